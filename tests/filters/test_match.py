import random

import pytest

from filters.match import snippet


def terms(matcher, text):
    return [m.term for m in matcher.scan(text)]


def test_plain_and_offsets(matcher):
    text = "In 1995 the Sarin attack shocked Tokyo."
    ms = matcher.scan(text)
    assert [m.term for m in ms] == ["Sarin"]
    assert text[ms[0].start:ms[0].end] == "Sarin"


def test_offsets_into_original_with_obfuscation(matcher):
    text = "Report: the s\u200b\u0430rin (\u0421s-137) case."
    ms = matcher.scan(text)
    assert {m.term for m in ms} == {"Sarin", "Caesium-137"}
    for m in ms:
        assert text[m.start:m.end].strip()
    assert text[ms[0].start:ms[0].end] == "s\u200b\u0430rin"


@pytest.mark.parametrize("text,term", [
    ("s.a.r.i.n", "Sarin"), ("S A R I N", "Sarin"), ("anth-rax spores", "Bacillus anthracis"),
    ("S4R1N", "Sarin"), ("r1c1n", "Ricin"), ("$arin!", "Sarin"), ("Cs137", "Caesium-137"), ("137Cs", "Caesium-137"),
    ("cesium 137", "Caesium-137"), ("CAS 107-44-8", "Sarin"), ("Pu-239", "Plutonium-239"), ("U-235", "Uranium-235"),
])
def test_variants(matcher, text, term):
    assert term in terms(matcher, text)


@pytest.mark.parametrize("text,look_alike,allowed", [  # each text against the listed term it resembles
    ("Pu-23g", "Plutonium-239", []), ("Cs-l37 is not it", "Caesium-137", []), ("so many people", "Soman", []),
    ("mustard on a hot dog", "Sulfur mustard", []), ("I saw Anthrax the band live", "Bacillus anthracis", []),
    ("SARS-CoV-2 spread quickly", "SARS-associated coronavirus", []), ("60 co-workers", "Cobalt-60", []),
    ("a bread tabun oven", "Tabun", []), ("the gb of memory", "Sarin", []),  # GB: sarin's code
    ("he had to fess up", "Iron-55", []),  # fess -> fe55 after leet folding
    ("our red car", None, []), ("U.S. nuclear weapons policy", "Uranium", ["Nuclear weapon"]),
])
def test_not_matched(matcher, text, look_alike, allowed):
    found = terms(matcher, text)
    assert look_alike not in found
    assert sorted(set(found)) == allowed  # and nothing else: no other listed name fires on ordinary words


def test_context_aliases_need_cues(matcher):
    assert "Bacillus anthracis" in terms(matcher, "An anthrax outbreak killed cattle")
    assert "Tabun" in terms(matcher, "tabun shells from the stockpile")
    assert "Sulfur mustard" in terms(matcher, "mustard was used as a chemical weapon")


def test_batch_equals_single(matcher):
    docs = ["nothing here", "sarin and VX nerve agent", "", "Ebola outbreak", "caf\u00e9 r\u0456cin", "x" * 50]
    batch = matcher.scan_batch(docs)
    assert [[(m.term, m.start) for m in b] for b in batch] == [[(m.term, m.start) for m in matcher.scan(d)] for d in docs]


def test_snippet_is_short():
    words = " ".join(f"w{i}" for i in range(40))
    text = words + " sarin " + words
    s = snippet(text, len(words) + 1, len(words) + 6)
    assert "[sarin]" in s and len(s.split()) <= 17


# ------------------------------------------------------------------ acceptance: obfuscated variants
HOMO = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "i": "\u0456", "x": "\u0445",
        "y": "\u0443", "s": "\u0455"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def _variants(name: str, rng: random.Random) -> list[str]:
    chars = list(name)
    homo = "".join(HOMO.get(c, c) if rng.random() < 0.7 else c for c in name)  # lower-case look-alikes
    zw = "\u200b".join(chars[: len(chars) // 2]) + "".join(chars[len(chars) // 2:])
    split = rng.choice([" ", ".", "-"]).join(c for c in name if c != " ")
    leet = "".join(LEET.get(c, c) if c.isalpha() and rng.random() < 0.6 else c for c in name)
    return [homo, zw, split, leet]


def test_obfuscated_variants_matched(lexicon, matcher):
    rng = random.Random(7)
    total = hit = 0
    misses = []
    for e in lexicon.entries:
        for a in e.aliases:
            if any(ch.isdigit() for ch in a) or len(a) > 40:
                continue  # leet digits do not apply to names that carry digits; long chemical names stay
            for v in _variants(a, rng):  # acronyms keep their capitals: they match case-sensitively
                total += 1
                found = e.term in terms(matcher, f"The report mentions {v} in passing.")
                hit += found
                if not found:
                    misses.append(v)
    assert total > 1500
    assert hit / total >= 0.95, (hit / total, misses[:20])
