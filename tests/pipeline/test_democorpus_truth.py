"""The demo corpus's ground truth is found as planted (README: injected duplicates and one bad record of
every kind): no planted duplicate pair survives whole, duplicates are removed for the planted reason, and
every planted bad record is quarantined with its reason, file and line."""
import json

import orjson

from common import reasons as R
from tests.conftest import run_cli
from tests.pipeline.helpers import ledger_rows


def test_planted_duplicates_and_bad_records_are_found(tmp_path):
    run = tmp_path / "run"
    run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", "ingest,dedupe")
    truth = json.loads(next(run.glob("input/*/ground_truth.json")).read_text())
    ingest = {r["id"]: r for r in ledger_rows(run, "ingest")}
    dedupe = {r["id"]: r for r in ledger_rows(run, "dedupe")}
    assert truth["exact"] and truth["near"] and truth["bad"]
    for copy, original in truth["exact"].items():  # the first in input order stays; a copy never survives with it
        pair = (dedupe[copy], dedupe[original])
        assert not all(r["decision"] == R.KEPT for r in pair), (copy, original)
        removed = pair[0] if pair[0]["decision"] == R.REMOVED else pair[1]  # the later of the two in input order
        assert removed["reason"] == R.EXACT_DUPLICATE, (copy, original, removed)
    for copy, planted in truth["near"].items():
        pair = (dedupe[copy], dedupe[planted["original"]])
        assert not all(r["decision"] == R.KEPT for r in pair), (copy, planted)
    for line, reason in truth["bad"].items():
        rows = [r for r in ingest.values() if orjson.loads(r["detail"] or "{}").get("line") == int(line)
                and r["id"].startswith("bad.jsonl")]
        if reason:
            assert [(r["decision"], r["reason"]) for r in rows] == [(R.QUARANTINED, reason)], (line, reason, rows)
            assert orjson.loads(rows[0]["detail"])["file"] == "bad.jsonl"
        else:
            assert not rows  # the good records among the bad ones are kept, under their own ids
    assert sum(r["decision"] == R.QUARANTINED for r in ingest.values()) == sum(1 for v in truth["bad"].values() if v)
