import json
import os

import pytest

from common import reasons
from common.config import ConfigError, build, load
from filters.config import CbrnConfig
from filters.decide import CbrnFilter, audit_record, filter_fingerprint

POS = ("Sarin is an organophosphorus nerve agent listed in Schedule 1 of the Chemical Weapons Convention. It was used "
       "in the 1995 Tokyo subway attack, and the OPCW has investigated its use in Syria.")
NEG = "Tomatoes grow best in full sun with regular watering and well-drained soil."


def test_remove_and_keep_with_reasons(cbrn_filter):
    d = cbrn_filter.decide(POS)
    assert d.decision == "remove" and d.reason in (reasons.CBRN_CLASSIFIER, reasons.CBRN_BLOCKLIST)
    assert "Sarin" in d.terms and d.score is not None and d.threshold is not None
    reasons.check(d.ledger_decision, d.reason)
    k = cbrn_filter.decide(NEG)
    assert k.decision == "keep" and k.reason == "" and k.terms == []
    reasons.check(k.ledger_decision, k.reason)


def test_detail_is_json_and_short(cbrn_filter):
    d = cbrn_filter.decide(POS)
    s = json.dumps(d.detail)
    t = d.detail["terms"][0]
    assert {"term", "category", "lists", "count", "context"} <= set(t)
    for snip in t["context"]:
        left, right = snip.split("[", 1)[0].split(), snip.split("]", 1)[1].split()
        assert len(left) <= 8 and len(right) <= 8
    assert d.detail["score"] == d.score and "chunks" in d.detail and len(s) < 5000


def test_errors_fail_closed(cbrn_filter):
    ds = cbrn_filter.decide_batch([None, 5, NEG])
    assert [d.decision for d in ds] == ["error", "error", "keep"]
    assert ds[0].reason == reasons.CBRN_ERROR and ds[0].ledger_decision == reasons.QUARANTINED


def test_deterministic_and_batch_equals_single(cbrn_filter):
    texts = [POS, NEG, "", "Anthrax played a loud set", POS * 30]
    a = [d.to_dict() for d in cbrn_filter.decide_batch(texts)]
    b = [cbrn_filter.decide(t).to_dict() for t in texts]
    assert a == b == [d.to_dict() for d in cbrn_filter.decide_batch(texts)]


def test_long_document_chunked(cbrn_filter):
    filler = " ".join(["The garden club met on Tuesday to plan the spring flower show."] * 120)
    d = cbrn_filter.decide(filler + " " + POS + " " + filler)
    assert d.detail["chunks"]["n"] > 2 and d.decision == "remove"


def test_score_without_terms_switch():
    f = CbrnFilter.from_config(CbrnConfig(score_without_terms=False))
    assert f.decide(NEG).score is None
    assert f.decide(POS).score is not None


def test_fingerprint_and_forked_worker(cbrn_filter):
    fp = filter_fingerprint()
    assert set(fp) >= {"lexicon_sha256", "model_sha256", "threshold", "policy"}
    assert fp == cbrn_filter.fingerprint()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child loads its own model lazily
        os.close(r)
        os.write(w, json.dumps(cbrn_filter.decide(POS).to_dict()).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    assert json.loads(data) == json.loads(json.dumps(cbrn_filter.decide(POS).to_dict()))


def test_audit_record_has_no_text_by_default(cbrn_filter):
    d = cbrn_filter.decide(POS)
    rec = audit_record("doc-1", POS, d, source="a.jsonl", line=3)
    assert "text" not in rec and len(rec["sha256"]) == 64 and rec["line"] == 3
    assert audit_record("doc-1", POS, d, keep_text=True)["text"] == POS


def test_config_section_and_validation():
    assert isinstance(load().cbrn, CbrnConfig)
    with pytest.raises(ConfigError, match="cbrn.threshold"):
        build(CbrnConfig, {"threshold": 1.5}, "[cbrn]")
    with pytest.raises(ConfigError, match="unknown key 'treshold'"):
        build(CbrnConfig, {"treshold": 0.5}, "[cbrn]")
    with pytest.raises(ConfigError, match="cbrn.chunk_overlap_words"):
        build(CbrnConfig, {"chunk_words": 10, "chunk_overlap_words": 10}, "[cbrn]")


def test_blocklist_alone_removes_a_dense_list_of_high_concern_names(cbrn_filter):
    """A bare list of three Schedule-1 names is removed on the blocklist (reason cbrn_blocklist) even
    where the classifier would keep it (a threshold of 1.0 here: no score passes it); two names, or a
    higher configured minimum, keep it."""
    no_classifier = CbrnFilter.from_config(CbrnConfig(threshold=1.0, threshold_without_terms=1.0))
    dense = no_classifier.decide("Tabun, soman and sarin.")
    assert dense.score < dense.threshold  # the classifier alone would keep it
    assert (dense.decision, dense.reason) == ("remove", reasons.CBRN_BLOCKLIST)
    assert dense.detail["high_concern"]["distinct"] == 3
    assert no_classifier.decide("Tabun and sarin.").decision == "keep"
    stricter = CbrnFilter.from_config(CbrnConfig(threshold=1.0, threshold_without_terms=1.0, blocklist_min_high_terms=4))
    assert stricter.decide("Tabun, soman and sarin.").decision == "keep"


def test_the_strong_threshold_applies_from_strong_min_terms_distinct_terms(cbrn_filter):
    pol = cbrn_filter.policy()
    assert pol["threshold_strong"] < pol["threshold"]
    one, two = cbrn_filter.decide("The treaty bans sarin."), cbrn_filter.decide("The treaty bans sarin and soman.")
    assert (one.detail["n_terms"], one.threshold) == (1, pol["threshold"])
    assert (two.detail["n_terms"], two.threshold) == (2, pol["threshold_strong"])
    lenient = CbrnFilter.from_config(CbrnConfig(strong_min_terms=3))
    assert lenient.decide("The treaty bans sarin and soman.").threshold == lenient.policy()["threshold"]
