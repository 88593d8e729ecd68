"""The demo's own CBRN-topic documents and hard negatives: safe to ship, and decided as labeled."""
from pipeline.demo_texts import HARD_NEGATIVE, TOPIC, demo_documents
from tests.filters.test_safety_scan import _flags
from tests.filters.test_stage import ORDINARY
from tests.filters.test_stage import TOPIC as STAGE_TOPIC


def test_demo_and_stage_test_texts_have_no_enabling_patterns(matcher):
    texts = list(TOPIC.values()) + list(HARD_NEGATIVE.values()) + STAGE_TOPIC + ORDINARY
    bad = [(t[:60], _flags(matcher, t)) for t in texts if _flags(matcher, t)]
    assert not bad, bad


def test_demo_documents_are_labeled_and_unique():
    docs = demo_documents()
    assert len({d["id"] for d in docs}) == len(docs) == len(TOPIC) + len(HARD_NEGATIVE)
    assert {d["meta"]["label"] for d in docs} == {0, 1}


def test_the_default_filter_removes_demo_topics_and_keeps_hard_negatives():
    from filters.decide import CbrnFilter
    f = CbrnFilter.from_config()
    docs = demo_documents()
    decisions = f.decide_batch([d["text"] for d in docs])
    wrong = [(d["id"], round(x.score, 3)) for d, x in zip(docs, decisions)
             if (x.decision == "remove") != (d["meta"]["label"] == 1)]
    assert not wrong, wrong
