"""The short-context rule, enforced again on whatever a ledger holds.

The filter writes each match as `left words [match] right words` with at most SNIPPET_WORDS words
(and SNIPPET_CHARS characters) either side. The audit does not trust that: a ledger written by an
older or buggy stage could carry a long excerpt of a removed document, and the report must never
show one. Everything a report shows from a document goes through `clip`.
"""
from __future__ import annotations

from filters.match import SNIPPET_CHARS, SNIPPET_WORDS
from filters.normalize import exact_view, leet_view

MATCH_CHARS = 80     # a lexicon match is a name (longest alias ~55 chars); a longer bracket run is not one
WITHHELD = "(context withheld: not in the snippet format)"


def _spans(toks: list[str]) -> list[tuple[int, int]]:
    """Candidate bracketed match runs [i, j] (inclusive) of at most MATCH_CHARS characters; counted in
    characters, not words, because a letter-split match ("s a r i n") is many short tokens."""
    out = []
    for i, t in enumerate(toks):
        if not t.startswith("["):
            continue
        size = -1
        for j in range(i, len(toks)):
            size += len(toks[j]) + 1
            if size > MATCH_CHARS:
                break
            if toks[j].endswith("]"):
                out.append((i, j))
                break
    return out


def _cap_side(words: list[str], from_left: bool) -> list[str]:
    """Drop the words farthest from the match until the side fits in SNIPPET_CHARS."""
    words = list(words)
    while words and len(" ".join(words)) > SNIPPET_CHARS:
        words.pop(0 if from_left else -1)
    return words


def _folded(name: str) -> str:
    """A name as the matcher sees it: homoglyphs and accents folded, digits read as letters, no spaces
    or punctuation."""
    return "".join(ch for ch in leet_view(exact_view(name)) if ch.isalnum())


def clip(snippet, aliases=()) -> str:
    """At most SNIPPET_WORDS words either side of one bracketed match; else withheld."""
    toks = str(snippet).split()
    spans = _spans(toks)
    if not spans:
        return WITHHELD
    # a document may contain brackets of its own ("[1]", "[chat]"): prefer the run that spells a known
    # alias, also when the match was a disguised spelling ("e-b-o-l-a", "r1c1n", a Cyrillic letter)
    names = {_folded(a) for a in aliases}
    i, j = next((s for s in spans if _folded(" ".join(toks[s[0]:s[1] + 1])[1:-1]) in names), spans[0])
    match = " ".join(toks[i:j + 1])
    left = _cap_side(toks[max(0, i - SNIPPET_WORDS):i], from_left=True)
    right = _cap_side(toks[j + 1:j + 1 + SNIPPET_WORDS], from_left=False)
    return " ".join(left + [match] + right)


def clip_text(value, limit: int = 160) -> str:
    """Ids, sources, error messages: one line, at most `limit` characters."""
    s = " ".join(str(value).split())
    return s if len(s) <= limit else s[:limit - 1] + "…"
