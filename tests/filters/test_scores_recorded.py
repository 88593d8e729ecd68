"""Every document the CBRN classifier scores has its score in the ledger (kept ones too, with the
threshold that applied), so a reviewer can find any document right of the threshold line; the report
lists the kept documents without a term closest to their threshold (near misses)."""
from __future__ import annotations

import json

from common import reasons as R
from tests.conftest import run_cli
from tests.pipeline.helpers import ledger_rows, run_stages, stats, write_jsonl

TEXTS = [
    "The county fair opened with a parade, a pie contest and a brass band playing old marches all afternoon.",
    "Rainfall this spring was heavier than usual, and farmers delayed planting until the fields had drained.",
    "The museum's new wing shows textiles from three centuries, with looms and dyes explained for visitors.",
    "A volunteer crew restored the old railway station, repainting the benches and repairing the clock tower.",
]


def test_every_scored_document_has_its_score_in_the_ledger(tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": " ".join([t] * 3)} for i, t in enumerate(TEXTS)])
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe", "cbrn"), cbrn={"min_words_without_terms": 10,
                                                                         "no_term_min_domain_words": 0})
    st = stats(run, "cbrn")
    scored = sum(st["scores"]["kept"]) + sum(st["scores"]["removed"])
    assert scored == len(TEXTS)  # long enough to be scored without a term
    rows = ledger_rows(run, "cbrn")
    with_score = [r for r in rows if r["decision"] in (R.KEPT, R.REMOVED) and "score" in json.loads(r["detail"] or "{}")
                  and json.loads(r["detail"])["score"] is not None]
    assert len(with_score) == scored
    for r in with_score:
        d = json.loads(r["detail"])
        assert isinstance(d["threshold"], float) and 0.0 <= d["score"] <= 1.0
    run_cli("-m", "pipeline", "run", "--run-dir", run, "--stages", "audit", "--workers", "1")
    audit = json.loads((run / "audit" / "audit.json").read_text())
    cbrn = audit["cbrn"] if "cbrn" in audit else audit["stages"]["cbrn"]
    kept_scored = [r for r in with_score if r["decision"] == R.KEPT]
    assert cbrn["scored_kept_without_terms"] == len(kept_scored)
    near = cbrn["near_misses"]
    assert {r["id"] for r in near} == {r["id"] for r in kept_scored}
    ratios = [r["score"] / r["threshold"] for r in near]
    assert ratios == sorted(ratios, reverse=True)
    assert "Near misses" in (run / "audit" / "report.md").read_text()
