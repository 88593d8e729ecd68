"""The full policy on the shared dev split (evaluation only: never trained or calibrated on)."""
from tests.filters.conftest import SHARED, needs_shared


@needs_shared
def test_dev_acceptance_target_and_levels(cbrn_filter):
    """Issue 16's target for the default (balanced) policy, thresholds chosen on training data only:
    recall >= 0.95 at FPR <= 0.05. Measured 0.9663 (86 of 89) at FPR 0.0 with the shipped model.
    The levels nest on the same decisions: narrow removes no more than balanced, broad no less."""
    from filters.evaluate import evaluate
    res = evaluate(cbrn_filter, SHARED / "cbrn_labeled" / "dev.jsonl")
    assert res["errors"] == 0
    assert res["fpr"] <= 0.05, res["false_positives"]
    assert res["recall"] >= 0.95, res["false_negatives"]
    lv = {r["level"]: r for r in res["levels"]}
    assert lv["balanced"]["chosen"] and lv["balanced"]["recall"] == res["recall"]
    assert lv["narrow"]["removed"] <= lv["balanced"]["removed"] <= lv["broad"]["removed"]
    assert lv["narrow"]["recall"] <= res["recall"] <= lv["broad"]["recall"]
