"""The repo's own labeled text and fixtures carry no enabling patterns: no quantities or conditions next
to a lexicon term and no procedural verbs (names and encyclopedia-level text only)."""
import re

from filters.data import DATA_DIR, EXTRA_FILES, read_extra
from tests.filters.conftest import REPO

QUANTITY = re.compile(r"\b\d+(?:[.,]\d+)?\s*(?:mg|g|kg|µg|ug|ng|ml|mL|l|L|°\s*[CF]|degrees|psi|bar|atm|rpm|%|ppm|ppb|"
                      r"Ci|mCi|Bq|kBq|MBq|GBq|TBq|mol|M|hours?|hrs?|minutes?|mins?|h)\b")
PROCEDURAL = re.compile(r"\b(synthesi[sz]\w*|aerosoli[sz]\w*|weaponi[sz]\w*|cultivat\w*|purif\w*|distil\w*|reflux\w*|"
                        r"incubat\w*|inoculat\w*|mill(?:ed|ing)|dry(?:ing)? the|step \d|stir\w*|titrat\w*|"
                        r"concentrat(?:e|ing) the|extract(?:ing)? the|precursor route|yield of)\b", re.I)


def _texts():
    out = [(f"filters/data/{r['note']}", r["text"]) for r in read_extra()]
    for p in (REPO / "tests" / "filters").rglob("*"):
        if p.suffix in (".txt", ".jsonl", ".json") and p.is_file():
            out.append((str(p), p.read_text(encoding="utf-8")))
    return out


def test_scanner_catches_enabling_patterns(matcher):
    assert _flags(matcher, "Mix 5 g of ricin precursor at 40 °C") and _flags(matcher, "how to aerosolize spores")
    assert not _flags(matcher, "Ricin is a Schedule 1 toxin banned under the Chemical Weapons Convention.")


def _flags(matcher, text):
    flags = [m.group(0) for m in PROCEDURAL.finditer(text)]
    for m in matcher.scan(text):
        window = text[max(0, m.start - 80):m.end + 80]
        flags += [q.group(0) for q in QUANTITY.finditer(window)]
    return flags


def test_repo_texts_have_no_enabling_patterns(matcher):
    texts = _texts()
    assert len(texts) >= len(EXTRA_FILES) and (DATA_DIR / EXTRA_FILES[0]).is_file()
    bad = [(where, _flags(matcher, t)) for where, t in texts if _flags(matcher, t)]
    assert not bad, bad
