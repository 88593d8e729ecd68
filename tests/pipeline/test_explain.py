"""`python -m pipeline explain`: one document's path through every stage, read from the ledgers, with
the CBRN evidence clipped as in the audit report; unknown ids exit 1 with a suggestion."""
import json

from common import reasons as R
from filters.audit.snippets import SNIPPET_WORDS
from filters.data import read_extra
from tests.conftest import run_cli
from tests.pipeline.helpers import ledger_rows, run_stages, write_jsonl

PLAIN = "The village library opened a reading room; volunteers built the shelves and sorted the books by subject."


def _run(tmp_path):
    topic = next(r["text"] for r in read_extra() if r["label"] == 1 and len(r["text"].split()) > 60)
    recs = [{"id": "plain-1", "text": PLAIN}, {"id": "plain-2", "text": PLAIN}, {"id": "topic-1", "text": topic},
            b'{"id": "broken", "text": ']
    src = write_jsonl(tmp_path / "docs.jsonl", recs)
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe", "cbrn"))
    return run


def test_explain_follows_each_document_through_the_stages(tmp_path):
    from pipeline.explain import explain
    run = _run(tmp_path)
    res = explain(run, ["plain-1", "plain-2", "topic-1", "docs.jsonl:4", "nope"])
    assert [(e["stage"], e["decision"]) for e in res["plain-1"]["stages"]] == [
        ("ingest", R.KEPT), ("dedupe", R.KEPT), ("cbrn", R.KEPT)]
    dup = res["plain-2"]
    assert dup["stages"][-1] == {"stage": "dedupe", "decision": R.REMOVED, "reason": R.EXACT_DUPLICATE,
                                 "detail": dup["stages"][-1]["detail"]}
    assert dup["duplicate_chain"] == ["plain-1"] and dup["ends"] == f"removed at dedupe ({R.EXACT_DUPLICATE})"
    topic = res["topic-1"]["stages"][-1]
    row = next(r for r in ledger_rows(run, "cbrn") if r["id"] == "topic-1")
    assert (topic["decision"], topic["reason"]) == (row["decision"], row["reason"]) == (R.REMOVED, R.CBRN_CLASSIFIER)
    c = topic["cbrn"]
    assert c["score"] >= c["threshold"] and "balanced" in c["levels"] and c["terms"]
    for t in c["terms"]:
        for ctx in t["context"]:
            left, _, right = ctx.partition("]")
            assert len(left.split("[")[0].split()) <= SNIPPET_WORDS and len(right.split()) <= SNIPPET_WORDS
    assert [(e["stage"], e["decision"], e["reason"]) for e in res["docs.jsonl:4"]["stages"]] == [
        ("ingest", R.QUARANTINED, R.INVALID_JSON)]
    assert res["nope"] == {"found": False, "stages": [], "ends": None, "duplicate_chain": []}


def test_explain_cli_text_json_and_exit_codes(tmp_path):
    run = _run(tmp_path)
    out = run_cli("-m", "pipeline", "explain", run, "plain-2", "topic-1").stdout
    assert "duplicate of plain-1" in out and "removed in favour of: plain-1" in out
    assert "score" in out and "against threshold" in out and "ends: removed at cbrn (cbrn_classifier)" in out
    js = json.loads(run_cli("-m", "pipeline", "explain", run, "topic-1", "--json").stdout)
    assert js["topic-1"]["found"] and js["topic-1"]["stages"][0]["stage"] == "ingest"
    proc = run_cli("-m", "pipeline", "explain", run, "plain-3", check=False)
    assert proc.returncode == 1 and "not in any stage's ledger; did you mean plain-" in proc.stdout
    assert {"plain-1", "plain-2"} <= set(proc.stdout.split("did you mean ")[1].rstrip("?\n").split(", "))
    proc = run_cli("-m", "pipeline", "explain", tmp_path / "nowhere", "x", check=False)
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
