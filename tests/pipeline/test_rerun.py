"""Running a complete stage again does no work and says so: no made-up docs/s, and its timing.json
keeps the real run's numbers."""
from tests.conftest import run_cli
from tests.pipeline.helpers import write_jsonl


def test_a_complete_stage_is_reported_as_skipped_and_keeps_its_timing(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", [{"id": f"d{i}", "text": f"text number {i}"} for i in range(5)])
    run = tmp_path / "run"
    args = ("-m", "pipeline", "run", "--run-dir", run, "--input", src, "--stages", "ingest", "--workers", "1")
    first = run_cli(*args).stdout
    assert "[ingest] done" in first and "skipped" not in first
    timing = (run / "ingest" / "timing.json").read_bytes()
    again = run_cli(*args).stdout
    assert "[ingest] skipped (complete: every task finished earlier)" in again and "[ingest] done" not in again
    assert (run / "ingest" / "timing.json").read_bytes() == timing
    row = next(line for line in again.splitlines() if line.startswith("ingest "))
    assert row.split()[-1] == "-"  # docs/s: nothing was processed
