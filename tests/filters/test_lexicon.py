from filters.lexicon import load_lexicon, LexiconError
from filters.lexicon import build
from filters.lexicon.tables import LISTS
import pytest


def test_shipped_file_is_fresh_build():
    assert build.main(["--check"]) == 0


def test_entries_have_source_lists_and_version(lexicon):
    assert lexicon.version
    assert len(lexicon.entries) > 250
    for e in lexicon.entries:
        assert e.lists, e.term
        for m in e.lists:
            assert m["list"] in LISTS, (e.term, m)
    cats = {e.category for e in lexicon.entries}
    assert cats == {"chemical", "biological", "radiological", "nuclear"}


def test_tiers_and_schedules_marked(lexicon):
    by = {e.term: e for e in lexicon.entries}
    assert by["Bacillus anthracis"].tier1 and by["Yersinia pestis"].tier1
    assert by["Sarin"].schedule1 and by["VX"].schedule1 and by["Ricin"].schedule1
    assert not by["Phosgene"].schedule1 and not by["Abrin"].tier1
    assert by["Sarin"].cas == "107-44-8"


def test_ambiguous_aliases_are_context_only(lexicon):
    by = {e.term: e for e in lexicon.entries}
    assert "anthrax" in by["Bacillus anthracis"].context_aliases
    assert "anthrax" not in by["Bacillus anthracis"].aliases
    assert "mustard" in by["Sulfur mustard"].context_aliases
    assert "tabun" in by["Tabun"].context_aliases
    for e in lexicon.entries:
        for a in e.aliases:
            assert sum(ch.isalnum() for ch in a) > 2, (e.term, a)


def test_cas_check_digits():
    assert build.cas_ok("107-44-8") and build.cas_ok("7440-61-1")
    assert not build.cas_ok("107-44-9")
    for row in build.tables.ROWS:
        if row["cas"]:
            assert build.cas_ok(row["cas"]), row


def test_names_only_no_quantities(lexicon):
    import re
    for e in lexicon.entries:
        for a in (e.term,) + e.aliases + e.context_aliases:
            assert not re.search(r"\d\s*(%|kg|mg|g\b|percent)", a), a


def test_bad_file_errors_name_the_file(tmp_path):
    p = tmp_path / "lex.json"
    p.write_text('{"version": "x", "entries": [{"term": "a"}], "cues": {}}')
    with pytest.raises(LexiconError, match="entries\\[0\\] missing field"):
        load_lexicon(p)
    with pytest.raises(LexiconError, match="not found"):
        load_lexicon(tmp_path / "nope.json")
