"""Real-corpus negatives and the no-term path: fixed splits, negative selection, the rate threshold, the
minimum length rule, and (with ../shared/data) the corpus removal rate on the held-out report split."""
import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from filters.cbrn import rate_threshold
from filters.config import CbrnConfig
from filters.data.corpus import TOPIC, labeled_titles, select_negatives, split_of
from tests.filters.conftest import SHARED, needs_shared

LONG_NEG = ("The village library opened a new reading room this spring. Volunteers painted the walls, built shelves "
            "from donated timber and sorted thousands of books by subject. Children now meet there on Saturday "
            "mornings for stories, and a local historian gives talks about the old mill, the river crossings and the "
            "families who farmed the valley in the nineteenth century. The council hopes to keep it open late.")


def test_splits_fixed_and_proportional():
    ids = [f"src-{i:07d}" for i in range(20000)]
    c = Counter(split_of(i) for i in ids)
    assert abs(c["train"] / 20000 - 0.4) < 0.02 and abs(c["calib"] / 20000 - 0.3) < 0.02
    # a document's split depends on its id alone: the same in a process with another hash seed
    code = ("import json, sys; from filters.data.corpus import split_of; "
            "print(json.dumps([split_of(f'src-{i:07d}') for i in range(200)]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == [split_of(i) for i in ids[:200]]


def test_select_negatives_train_split_only_no_hits_no_topic_caps():
    recs = []
    for i in range(3000):
        src = "a" if i % 3 else "b"
        text = f"entry {i} " + ("nerve agent history" if i % 50 == 0 else "ordinary words about gardens") + (
            " HIT" if i % 7 == 0 else "")
        recs.append({"id": f"{src}-{i}", "source": src, "text": text, "split": split_of(f"{src}-{i}")})
    has_hit = lambda texts: ["HIT" in t for t in texts]  # noqa: E731
    neg = select_negatives(recs, has_hit, {"a": 100, "*": 10})
    by = Counter(n["source"] for n in neg)
    assert by == {"a": 100, "b": 10}
    split = {r["id"]: r["split"] for r in recs}
    assert all(split[n["id"]] == "train" for n in neg)
    assert not any("HIT" in n["text"] or TOPIC.search(n["text"]) for n in neg)
    assert neg == select_negatives(list(reversed(recs)), has_hit, {"a": 100, "*": 10})  # order-independent


def test_labeled_titles(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "t", "label": 0, "note": "real text (Wikipedia summary \'Bamako\', CC-BY-SA-4.0, via x)"}\n'
                 '{"text": "t", "label": 1, "note": "synthetic; pos"}\n')
    assert labeled_titles([p, tmp_path / "missing.jsonl"]) == {"Bamako"}


def test_rate_threshold_never_exceeds_budget():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = np.round(rng.random(rng.integers(1, 60)), int(rng.integers(1, 7)))  # many ties
        k = int(rng.integers(0, len(s) + 2))
        t = rate_threshold(s, k)
        assert (s >= t).sum() <= k
        assert t == round(t, 6)
        if 0 < k < len(s) and t > 1e-6:  # and it is the smallest such 6-decimal threshold
            assert (s >= round(t - 1e-6, 6)).sum() > k


def test_short_documents_without_terms_are_not_scored(cbrn_filter):
    short = "Weaponry: weapons, collectively; as, an array of weaponry."
    d = cbrn_filter.decide(short)
    assert d.decision == "keep" and d.score is None and d.detail["words"] < cbrn_filter.cfg.min_words_without_terms
    # long enough, but none of the field's words: not scored either (filters/evidence.py DOMAIN_WORDS)
    assert cbrn_filter.decide(LONG_NEG).score is None
    with_word = LONG_NEG + " A plaque by the door recalls the fever hospital that stood there in 1850."
    d = cbrn_filter.decide(with_word)
    assert d.score is not None and d.decision == "keep"     # long enough and a field word: scored (and kept)


def test_min_words_config():
    from common.config import ConfigError, build
    with pytest.raises(ConfigError, match="cbrn.min_words_without_terms"):
        build(CbrnConfig, {"min_words_without_terms": -1}, "[cbrn]")
    with pytest.raises(ConfigError, match="cbrn.no_term_min_domain_words"):
        build(CbrnConfig, {"no_term_min_domain_words": -1}, "[cbrn]")
    from filters.decide import CbrnFilter
    f = CbrnFilter.from_config(CbrnConfig(min_words_without_terms=0, no_term_min_domain_words=0))
    assert f.decide("A short line.").score is not None
    assert f.policy()["min_words_without_terms"] == 0


def test_shipped_metadata_levels_nest(cbrn_filter):
    m = cbrn_filter.meta
    assert m["model_bytes"] <= 5_000_000 and m["corpus"]["negatives"] > 1000
    lv = m["levels"]
    for key in ("threshold", "threshold_strong"):
        assert lv["narrow"][key] >= lv["balanced"][key] >= lv["broad"][key], key
    assert lv["narrow"]["threshold_without_terms"] is None
    assert lv["balanced"]["threshold_without_terms"] >= lv["broad"]["threshold_without_terms"]
    assert (m["threshold"], m["threshold_strong"], m["threshold_without_terms"]) == tuple(
        lv["balanced"][k] for k in ("threshold", "threshold_strong", "threshold_without_terms"))


@needs_shared
@pytest.mark.skipif(not (SHARED / "corpus" / "STATS.json").is_file(), reason="../shared/data/corpus is not present")
def test_the_no_term_thresholds_hold_their_corpus_budget_recounted(cbrn_filter):
    """Recount, with the shipped model, what each level's no-term threshold removes from the held-out calib
    split (the metadata's own numbers are not trusted): at most the level's budget, and what it recorded."""
    from filters.cbrn import no_term_scores, training_set
    ds = training_set([str(SHARED / "cbrn_labeled" / "train.jsonl")], False, SHARED / "corpus",
                      negatives_per_source={"*": 0})
    scores = no_term_scores(cbrn_filter.model_path, ds["calib"], ds["n_terms_fn"], cbrn_filter.cfg)
    assert len(ds["calib"]) > 50_000 and len(scores) > 5_000
    for name, lv in cbrn_filter.meta["levels"].items():
        cal = lv["calib"]
        if lv["corpus_rate"] is None:
            assert cal is None and lv["threshold_without_terms"] is None
            continue
        removed = int((scores >= lv["threshold_without_terms"]).sum())
        assert removed == cal["no_term_removed"] and removed <= lv["corpus_rate"] * len(ds["calib"]), name


@needs_shared
@pytest.mark.skipif(not (SHARED / "corpus" / "STATS.json").is_file(), reason="../shared/data/corpus is not present")
def test_corpus_report_sample_removal_rate(cbrn_filter):
    """Presumed-negative real text: a seeded 15,000-document sample of the held-out report split (never trained
    or calibrated on; labeled Wikipedia leads left out) loses well under 0.5 %."""
    from filters.data.corpus import iter_corpus
    excl = labeled_titles([SHARED / "cbrn_labeled" / "train.jsonl", SHARED / "cbrn_labeled" / "dev.jsonl"])
    recs = [r for r in iter_corpus(SHARED / "corpus", excl) if r["split"] == "report"]
    recs = sorted(recs, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())[:15000]
    ds = cbrn_filter.decide_batch([r["text"] for r in recs])
    removed = [(r["source"], d.detail["n_terms"]) for r, d in zip(recs, ds) if d.decision == "remove"]
    assert not any(d.decision == "error" for d in ds)
    assert len(removed) / len(recs) < 0.002, Counter(removed)
    assert sum(1 for _, n in removed if n == 0) / len(recs) < 0.001, Counter(removed)


def test_random_order_of_batch_does_not_change_decisions(cbrn_filter):
    texts = [LONG_NEG, "short", LONG_NEG + " Sarin is a nerve agent banned by the Chemical Weapons Convention."]
    a = [d.to_dict() for d in cbrn_filter.decide_batch(texts)]
    perm = list(range(len(texts)))
    random.Random(1).shuffle(perm)
    b = cbrn_filter.decide_batch([texts[i] for i in perm])
    assert [b[perm.index(i)].to_dict() for i in range(len(texts))] == a


@needs_shared
@pytest.mark.slow
def test_make_cbrn_model_rebuilds_the_shipped_model_byte_for_byte(tmp_path):
    """README: `make cbrn-model` rebuilds the shipped model from ../shared/data; the same bytes come out
    (model and metadata, but for the file name the metadata records)."""
    from tests.conftest import REPO, run_cli
    out = tmp_path / "cbrn_default.ftz"
    run_cli("-m", "filters.cbrn", "build-default", "--out", out, timeout=900)
    shipped = REPO / "filters" / "models" / "cbrn_default.ftz"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(shipped.with_suffix(".json").read_text())


def test_corpus_labels_refuse_ids_outside_the_train_split_naming_file_and_line(tmp_path):
    from filters.data.corpus import read_corpus_labels
    train_id = next(f"doc-{i}" for i in range(1000) if split_of(f"doc-{i}") == "train")
    report_id = next(f"doc-{i}" for i in range(1000) if split_of(f"doc-{i}") == "report")
    records = [{"id": train_id, "text": "a text"}, {"id": report_id, "text": "another"}]
    p = tmp_path / "labels.tsv"
    p.write_text(f"# comment\n{train_id}\t0\tsome title\n")
    assert read_corpus_labels(records, p) == [{"text": "a text", "label": 0, "note": "corpus hand-labeled; some title"}]
    p.write_text(f"{train_id}\t0\tok\n{report_id}\t1\theld out\n")
    with pytest.raises(ValueError, match=rf"labels.tsv:2: '{report_id}' is in the report split; only train"):
        read_corpus_labels(records, p)
    p.write_text(f"{train_id}\t2\tbad label\n")
    with pytest.raises(ValueError, match=r"labels.tsv:1: expected 'id<TAB>label<TAB>title'"):
        read_corpus_labels(records, p)


@needs_shared
def test_every_shipped_corpus_label_is_a_train_split_document_with_a_term():
    from filters.data.corpus import CORPUS_LABELS, iter_corpus, read_corpus_labels
    from filters.decide import CbrnFilter
    rows = read_corpus_labels(list(iter_corpus(SHARED / "corpus")))
    assert len(rows) >= 150 and {r["label"] for r in rows} == {0, 1}
    f = CbrnFilter.from_config()
    assert all(m for m in f.matcher.scan_batch([r["text"] for r in rows])), CORPUS_LABELS
