"""Evidence paths of the decision and the policy levels, on texts written for this test (news and
encyclopedia level): a disguised name and hazard context lower the bar to `threshold_strong`, a document
without a term is scored on its own path and, when removed, names the window the classifier was most
sure of; each level removes what its thresholds say, and every decision records which levels remove it."""
from __future__ import annotations

import pytest

from common import reasons as R
from common.config import ConfigError
from filters.config import CbrnConfig
from filters.decide import LEVELS, CbrnFilter, summarise
from filters.classifier import prep
from filters.evidence import context_cues

SPLIT = "People on the forum kept posting about the s-a-r-i-n attack on the Tokyo subway and the trial that followed."
PLAIN = "People on the forum kept posting about the sarin attack on the Tokyo subway and the trial that followed."
CYRILLIC = "People on the forum kept posting about the s\u0430rin attack on the Tokyo subway and the trial that followed."
LEET = "People on the forum kept posting about the s4rin attack on the Tokyo subway and the trial that followed."
THEFT = ("Police said the stolen caesium-137 capsule raised fears of a dirty bomb, and inspectors from the "
         "national regulator searched the scrapyard.")
CLINIC = "The hospital replaced the caesium-137 unit in its blood irradiator with an X-ray machine last year."
NO_TERM = ("The museum's new exhibition follows the history of the city's harbour from the first fishing "
           "villages to the container terminals of today, with maps, ship models, photographs of dock "
           "workers and recordings of the songs they sang while loading cargo in the last century.")

HEALTH = ("The clinic's autumn vaccination drive opened on Monday, and nurses said the queue of older residents "
          "stretched around the block. Doctors recommend the yearly shot because the flu virus changes from season "
          "to season, and a fever in January keeps many people away from work and school for a week or more.")
HARRIMAN = ("Harriman, the diplomat, negotiated the treaty of 1963 that ended the testing of nuclear weapons in the "
            "atmosphere, and later served as an envoy to the peace talks in Paris.")
ANTHRAX = ("Investigators said the letters mailed in the 2001 bioterrorism attack held spores of Bacillus "
           "anthracis, and the inquiry into who sent them lasted most of a decade.")

DESCRIBED = ("The disease was declared eradicated in 1980 after a worldwide vaccination campaign, and the virus "
             "that caused it is now officially kept in only two laboratories, one in the United States and one "
             "in Russia, whose stocks the World Health Assembly debates destroying.")


def _summary(cbrn_filter, text):
    return summarise(text, cbrn_filter.matcher.scan(text), cbrn_filter.lexicon, cbrn_filter.cfg)


@pytest.mark.parametrize("text,kind", [(SPLIT, "split"), (CYRILLIC, "folded"), (LEET, "leet")])
def test_a_disguised_name_is_evidence_and_gets_the_strong_threshold(cbrn_filter, text, kind):
    d = cbrn_filter.decide(text)
    obf = d.detail["evidence"]["obfuscated"]
    assert [(o["term"], o["kind"]) for o in obf] == [("Sarin", kind)]
    assert obf[0]["form"] in text and len(obf[0]["form"]) <= 40
    assert d.detail["n_terms"] == 1 and d.threshold == cbrn_filter.threshold_strong < cbrn_filter.threshold
    plain = cbrn_filter.decide(PLAIN)  # the same sentence with the name spelled plainly: no such evidence
    assert "obfuscated" not in plain.detail["evidence"] and plain.threshold == cbrn_filter.threshold


def test_the_disguise_evidence_can_be_switched_off(cbrn_filter):
    off = CbrnFilter.from_config(CbrnConfig(evidence_obfuscated=False))
    d = off.decide(SPLIT)
    assert "obfuscated" not in d.detail["evidence"] and d.threshold == off.threshold


def test_hazard_context_near_a_term_is_evidence_and_ordinary_context_is_not(cbrn_filter):
    d = cbrn_filter.decide(THEFT)
    assert d.detail["evidence"]["context"] == ["dirty bomb", "inspectors", "stolen"]
    assert d.threshold == cbrn_filter.threshold_strong
    d = cbrn_filter.decide(CLINIC)
    assert d.detail["evidence"] == {} and d.threshold == cbrn_filter.threshold
    # context words count only near a term: far away they are not evidence about it
    far = THEFT + " " + " ".join(["the weather was fine"] * 10) + " stolen weapons were found."
    assert context_cues(far, cbrn_filter.matcher.scan(far), 12) == ["dirty bomb", "inspectors", "stolen"]
    needs = CbrnFilter.from_config(CbrnConfig(context_min_cues=4))
    assert needs.decide(THEFT).detail["evidence"] == {}


def test_a_document_without_a_term_is_scored_and_a_removal_names_its_best_window(cbrn_filter):
    kept = cbrn_filter.decide(HEALTH)
    assert kept.terms == [] and kept.threshold == cbrn_filter.threshold_without_terms and kept.score is not None
    assert kept.detail["evidence"]["domain"] == ["fever", "vaccination", "virus"]
    assert kept.decision == "keep" and "best_window" not in kept.detail
    # a bar low enough that this ordinary text is removed on the no-term path (what a description of an
    # agent without its name goes through): the reason is the classifier's and the window is named
    strict = CbrnFilter.from_config(CbrnConfig(threshold=0.0, threshold_without_terms=0.0))
    d = strict.decide(HEALTH)
    assert (d.decision, d.reason, d.terms) == ("remove", R.CBRN_CLASSIFIER, [])
    w = d.detail["best_window"]
    assert w["score"] == d.score and w["words"] == [0, len(prep(HEALTH).split())]
    assert w["starts"] == "the clinic s autumn vaccination drive opened on"
    # a long document: the window named is the one with the highest score, by its word range
    long = " ".join([HEALTH] * 3 + [DESCRIBED] + [HEALTH] * 3)
    d = strict.decide(long)
    cs = strict.classifier.chunk_scores(long)
    best = int(cs.argmax())
    step = strict.cfg.chunk_words - strict.cfg.chunk_overlap_words
    assert len(cs) > 2 and best > 0 and d.score == round(float(cs.max()), 6)
    assert d.detail["best_window"]["words"] == [best * step, min(best * step + strict.cfg.chunk_words,
                                                                 len(prep(long).split()))]
    short = CbrnFilter.from_config(CbrnConfig(threshold=0.0, threshold_without_terms=0.0, min_words_without_terms=100))
    assert short.decide(HEALTH).decision == "keep"  # too short for the no-term path: no score, no removal


def test_a_document_without_a_term_or_the_fields_words_is_not_scored(cbrn_filter):
    """However sure the classifier would be, text that uses none of the field's vocabulary (a harbour
    museum, a kernel struct listing) has nothing a reviewer could check: it is not scored at all."""
    strict = CbrnFilter.from_config(CbrnConfig(threshold=0.0, threshold_without_terms=0.0))
    d = strict.decide(NO_TERM)
    assert (d.decision, d.score, d.threshold) == ("keep", None, None)
    assert d.detail["evidence"] == {"domain": []}
    one = NO_TERM + " A plaque recalls the fever hospital that once stood by the quay."
    d = strict.decide(one)                                         # one field word: scored ...
    assert d.decision == "remove" and d.detail["evidence"]["domain"] == ["fever"]
    assert CbrnFilter.from_config(CbrnConfig(threshold=0.0, threshold_without_terms=0.0,
                                             no_term_min_domain_words=2)).decide(one).decision == "keep"  # ... unless 2
    # the words are read as the lexicon reads names: folded case and look-alike letters, digits for letters
    assert strict.decide(NO_TERM + " Old photos show the R3ACTOR hall.").detail["evidence"]["domain"] == ["reactor"]


def test_context_counts_near_an_agent_not_near_a_category_word(cbrn_filter):
    d = cbrn_filter.decide(HARRIMAN)           # "treaty" next to "nuclear weapons": no evidence
    assert [t["term"] for t in d.detail["terms"]] == ["Nuclear weapon"]
    assert "context" not in d.detail["evidence"] and d.threshold == cbrn_filter.threshold
    d = cbrn_filter.decide(ANTHRAX)            # the same kind of words near a named agent: evidence
    assert d.detail["evidence"]["context"] == ["attack", "bioterrorism"]
    assert d.threshold == cbrn_filter.threshold_strong


def test_levels_nest_and_every_decision_records_the_levels_that_remove_it(cbrn_filter):
    lv = cbrn_filter.levels
    assert list(lv) == list(LEVELS) and cbrn_filter.level is lv["balanced"]
    assert lv["narrow"].threshold >= lv["balanced"].threshold >= lv["broad"].threshold
    assert lv["narrow"].threshold_strong >= lv["balanced"].threshold_strong >= lv["broad"].threshold_strong
    assert lv["narrow"].threshold_without_terms is None  # narrow: no removal without a term
    twice = ("The encyclopedia entry on ricin describes the castor plant it comes from, and a second paragraph "
             "says that ricin is on the lists of a treaty annex.")
    s = _summary(cbrn_filter, twice)
    assert (s["n_terms"], s["max_mentions"]) == (1, 2)
    assert lv["broad"].reason(s, 0.0, cbrn_filter.cfg) == R.CBRN_BLOCKLIST  # named twice: broad removes
    assert lv["balanced"].reason(s, 0.0, cbrn_filter.cfg) == ""
    for text in (SPLIT, THEFT, CLINIC, NO_TERM, twice, PLAIN):
        d = cbrn_filter.decide(text)
        levels = d.detail.get("levels", {})
        assert ("balanced" in levels) == (d.decision == "remove")
        assert levels.get("balanced", "") == d.reason
        assert set(levels) <= {"narrow", "balanced", "broad"}
        assert not ("narrow" in levels and "balanced" not in levels) and not ("balanced" in levels and "broad" not in levels)
    # the classifier kept out of it (no score passes 1.0): broad still removes on the mentions alone
    broad = CbrnFilter.from_config(CbrnConfig(policy="broad", threshold=1.0, threshold_without_terms=1.0))
    d = broad.decide(twice)
    assert (d.decision, d.reason, broad.fingerprint()["policy"]["policy"]) == ("remove", R.CBRN_BLOCKLIST, "broad")
    assert broad.fingerprint()["policy_sha256"] != cbrn_filter.fingerprint()["policy_sha256"]


def test_an_unknown_policy_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"cbrn.policy: expected one of narrow, balanced, broad, got 'balance' "
                                          r"\(did you mean 'balanced'\?\)"):
        CbrnConfig(policy="balance").validate()


def test_generic_terms_alone_take_the_no_term_way_unless_in_hazard_context(cbrn_filter):
    mineral = "A black mineral found in granite pegmatites that contains uranium, thorium and rare earth metals."
    d = cbrn_filter.decide(mineral)
    assert sorted(d.terms) == ["Thorium", "Uranium"]
    assert d.detail["evidence"] == {"generic_only": ["Thorium", "Uranium"]} and not d.detail["escalated"]
    assert d.decision == "keep" and d.score is None  # under min_words_without_terms: not scored at all
    seized = "Border guards seized smuggled uranium at the crossing, and inspectors traced it to a stolen shipment."
    d = cbrn_filter.decide(seized)
    assert d.detail["escalated"] and d.detail["evidence"]["context"] == ["inspectors", "seized", "smuggled", "stolen"]
    assert d.threshold == cbrn_filter.threshold_strong
    # one specific term next to a generic one escalates as before (the specific term is evidence enough)
    d = cbrn_filter.decide("The element uranium and its isotope uranium-235 are covered in chapter four.")
    assert d.detail["escalated"] and "generic_only" not in d.detail["evidence"]
    with pytest.raises(ConfigError, match=r"cbrn.generic_terms\[0\]: 'Uranum' is not a term of the lexicon .*"
                                          r"did you mean 'Uranium'\?"):
        CbrnFilter.from_config(CbrnConfig(generic_terms=["Uranum"]))


def test_an_accent_is_not_a_disguise(cbrn_filter):
    accented = "The dictionary entry for s\u00e1rin gives its pronunciation and says the name comes from its discoverers."
    d = cbrn_filter.decide(accented)
    assert d.terms == ["Sarin"] and "obfuscated" not in d.detail["evidence"]
    zero_width = "People on the forum kept posting about the sa\u200brin attack on the Tokyo subway."
    assert [o["kind"] for o in cbrn_filter.decide(zero_width).detail["evidence"]["obfuscated"]] == ["folded"]


def test_passing_terms_named_once_take_the_no_term_way_and_twice_escalate(cbrn_filter):
    from filters.evidence import PASSING_TERMS_PRECISION
    once = "The word overkill meant the capacity to destroy a target with more nuclear weapons than needed."
    twice = once + " Strategists argued about nuclear weapons for decades."
    assert cbrn_filter.decide(once).detail["escalated"]  # off by default: a category word escalates
    strict = CbrnFilter.from_config(CbrnConfig(passing_terms=list(PASSING_TERMS_PRECISION)))
    d = strict.decide(once)
    assert not d.detail["escalated"] and d.detail["evidence"] == {"generic_only": ["Nuclear weapon"]}
    assert strict.decide(twice).detail["escalated"]
    assert strict.fingerprint()["policy_sha256"] != cbrn_filter.fingerprint()["policy_sha256"]
    with pytest.raises(ConfigError, match=r"cbrn.passing_terms\[0\]: 'nuke' is not a term of the lexicon"):
        CbrnFilter.from_config(CbrnConfig(passing_terms=["nuke"]))


def test_the_policy_digest_survives_a_json_round_trip_and_sees_nested_changes(cbrn_filter):
    """The policy nests (levels, evidence): its digest must be the same after the JSON round trip a
    manifest makes, and must change when a nested threshold does."""
    import orjson

    from common.filter_record import policy_sha256
    fp = cbrn_filter.fingerprint()
    back = orjson.loads(orjson.dumps(fp["policy"], option=orjson.OPT_SORT_KEYS))
    assert policy_sha256(back) == fp["policy_sha256"]
    back["levels"]["broad"]["threshold_strong"] = 0.0
    assert policy_sha256(back) != fp["policy_sha256"]
    flat = {"b": 1, "a": 0.5}  # a flat policy digests exactly as before nesting existed
    from common.io import sha256_bytes
    assert policy_sha256(flat) == sha256_bytes(repr(sorted(flat.items())).encode())


DOCSTRINGS = [
    "Return the logical and of the operand digits. Both operands must be logical numbers, that is, decimal "
    "numbers whose digits are all either zero or one; the result has as many digits as the longer operand, and "
    "a missing digit counts as zero. Raise an error when a digit is anything else.",
    "Compute the confidence interval of the relative risk of two groups from a two by two table of counts, using "
    "the logarithm of the ratio and its standard error. Groups with a zero cell get half a count added first, "
    "and the level argument sets the coverage, ninety five percent by default.",
    "Collect the exponents of an expression: walk the terms of a product, and for each base record the sum of the "
    "powers it is raised to, keeping symbolic exponents apart from numeric ones. The result maps every base to "
    "its total exponent, in the order the bases first appear in the expression.",
    "Simplify a circuit with gate identities: two adjacent inverse gates on the same wires cancel, a gate "
    "followed by its own inverse is dropped, and runs of commuting gates are sorted so that the later passes can "
    "find more pairs. The pass repeats until the circuit stops getting shorter.",
    "Expand a rational number as a continued fraction and return the list of partial quotients. The first "
    "quotient is the integer part; each further one comes from the reciprocal of the remainder, and the "
    "expansion stops when the remainder is zero, which happens for every rational input.",
]


@pytest.mark.parametrize("text", DOCSTRINGS)
def test_technical_docstrings_without_the_fields_words_are_never_scored(cbrn_filter, text):
    """The kind of text the issue's held-out docstrings were (removed at 0.75-0.997 with no term): the
    classifier is not asked, so its score cannot remove them, whatever the thresholds."""
    assert len(text.split()) >= cbrn_filter.cfg.min_words_without_terms
    strict = CbrnFilter.from_config(CbrnConfig(threshold=0.0, threshold_without_terms=0.0))
    d = strict.decide(text)
    assert (d.decision, d.score, d.detail["evidence"]) == ("keep", None, {"domain": []})
