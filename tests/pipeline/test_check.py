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
