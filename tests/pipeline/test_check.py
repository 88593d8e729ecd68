from pipeline.check import check_run
from tests.pipeline.helpers import run_stages, write_jsonl


def test_check_passes_a_complete_stage_and_fails_a_tampered_ledger(tmp_path):
    src = tmp_path / "d.jsonl"
    write_jsonl(src, [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, b"not json"])
    run = tmp_path / "run"
    run_stages(run, [src])
    assert all(good for good, _ in check_run(run, stages=("ingest",)))
    ledger = next((run / "ingest" / "ledger").glob("*.parquet"))
    ledger.unlink()
    failed = [what for good, what in check_run(run, stages=("ingest",)) if not good]
    assert failed == ["ingest: ledger rows recount to stats.json"]


def test_check_cli_checks_the_stages_that_ran(tmp_path):
    """README: a run of some stages passes `pipeline check`; stages never started are listed, not failed."""
    from tests.conftest import run_cli
    src = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "text": "one text"}, {"id": "b", "text": "another text"}])
    run = tmp_path / "run"
    run_cli("-m", "pipeline", "run", "--run-dir", run, "--input", src, "--stages", "ingest,dedupe", "--workers", "1")
    out = run_cli("-m", "pipeline", "check", run).stdout
    assert "not run here, not checked: cbrn, tokenize, train, audit" in out
    assert "FAIL" not in out and "ok    dedupe: ledger rows recount to stats.json" in out
    (run / "dedupe" / "stats.json").unlink()  # an asked-for stage that is incomplete still fails
    proc = run_cli("-m", "pipeline", "check", run, check=False)
    assert proc.returncode == 1 and "FAIL  dedupe: stats.json" in proc.stdout
