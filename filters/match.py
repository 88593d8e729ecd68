"""Multi-pattern lexicon matching, one Aho-Corasick pass per view, word-boundary aware.

One automaton, `joined`, over J (L without spaces) holds every spelling but the short codes. A hit
must start at a word start and end at a word end of L; its pieces are either the spelling's own
words, single letters ("s.a.r.i.n"), or, for letter-only spellings of 6+ letters, any split
("anth-rax"); "so man" is not soman. Digits in a spelling must be exact in E (Cs-137 is not
Cs-l37, and "fe55" does not match the word "fess"). A second automaton, `codes`, holds short
context-only codes (GB, VX, U, ...) over E and runs only where something else matched.
Context-only spellings count only with a cue word of their category nearby.

`Matcher.scan_batch(texts)` builds the views once for a whole batch (documents joined by a
separator) and runs the automata once: that finds the few candidate documents at C speed. Only the
candidates are scanned again one by one with every check, and only their hits are mapped back to
offsets in the ORIGINAL text.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import ahocorasick
import numpy as np

from filters.lexicon import Lexicon
from filters.normalize import ASCII_FOLD_BYTES, KEEP_SYMBOLS, LEET_BYTES, SEP, exact_view, leet_view, normalize_term, offset_map, original_span

MIN_SPLIT_PIECES_LEN = 6   # a term split into multi-letter pieces ("anth rax") must be this long
SNIPPET_WORDS = 8          # words of context either side in a snippet (the audit shows no more)
SNIPPET_CHARS = 80         # and at most this many characters either side


@dataclass(frozen=True)
class Pattern:
    entry: int            # lexicon entry index; -1 for a stop phrase
    alias: str            # spelling as written in the lexicon
    exact: str            # E form ("cs 137")
    leet: str             # L form ("cs iet")
    joined: str           # J form ("csiet")
    seg: tuple            # piece lengths of the L form, (2, 3)
    context_only: bool
    window: int           # cue window in tokens (context-only only)
    has_digits: bool
    case_sensitive: bool  # acronyms and codes: "GB"/"RED"/"HEU" only in capitals ("gb" is gigabytes)


@dataclass
class Match:
    entry: int
    term: str
    alias: str
    start: int            # offsets into the original text
    end: int
    kind: str             # exact | folded (homoglyph/zero-width/accents) | leet | split
    context_only: bool


def _alnum_count(s: str) -> int:
    return sum(ch.isalnum() for ch in s)


def _automaton(table: dict) -> ahocorasick.Automaton | None:
    if not table:
        return None
    a = ahocorasick.Automaton()
    for key, pids in table.items():
        a.add_word(key, tuple(pids))
    a.make_automaton()
    return a


class _Views:
    """E, L, J of one string and the J -> L index map (built on first use)."""

    def __init__(self, text: str):
        self.ascii = text.isascii()
        if self.ascii:  # bytes tables: a few passes at memory speed
            b = text.encode("ascii").translate(ASCII_FOLD_BYTES)
            self.E = b.decode("ascii")
            self.L = b.translate(LEET_BYTES).decode("ascii")
            self.J = b.translate(LEET_BYTES, b" ").decode("ascii")
        else:
            self.E = exact_view(text)
            self.L = leet_view(self.E)
            self.ascii = self.L.isascii()
            self.J = self.L.replace(" ", "")
        self._jmap = None

    def _array(self, s: str) -> np.ndarray:
        if self.ascii:
            return np.frombuffer(s.encode("ascii"), dtype=np.uint8)
        return np.frombuffer(s.encode("utf-32-le"), dtype="<u4")

    def separators(self) -> list[int]:
        return np.flatnonzero(self._array(self.E) == 0).tolist()

    @property
    def jmap(self) -> np.ndarray:
        if self._jmap is None:
            self._jmap = np.flatnonzero(self._array(self.L) != 32)
        return self._jmap


class Matcher:
    def __init__(self, lexicon: Lexicon, context_window: int = 8):
        self.lexicon = lexicon
        self.context_window = context_window
        self.patterns: list[Pattern] = []
        self.cues = {cat: {leet_view(normalize_term(w)) for w in words} for cat, words in lexicon.cues.items()}
        for e in lexicon.entries:
            for a in e.aliases:
                self._add(e.index, a, False)
            for a in e.context_aliases:
                self._add(e.index, a, True)
            if e.cas:  # with or without dashes; the dashless form only where it is long enough to be rare
                self._add(e.index, e.cas, False)
                if len(e.cas.replace("-", "")) >= 7:
                    self._add(e.index, e.cas.replace("-", ""), False)
        for a in lexicon.stop_phrases:
            self._add(-1, a, False)
        joined, codes = {}, {}
        for pid, p in enumerate(self.patterns):
            if p.context_only and _alnum_count(p.exact) <= 3:
                codes.setdefault(p.exact, []).append(pid)
            else:
                joined.setdefault(p.joined, []).append(pid)
        self.joined, self.codes = _automaton(joined), _automaton(codes)

    def _add(self, entry: int, alias: str, context_only: bool) -> None:
        exact = normalize_term(alias)
        if not exact:
            return
        leet = leet_view(exact)
        n = _alnum_count(exact)
        window = (1 if n <= 1 else 3 if n <= 3 else self.context_window) if context_only else 0
        letters = [ch for ch in alias if ch.isalpha()]
        acronym = " " not in alias.strip() and n <= 6 and sum(ch.isupper() for ch in letters[1:]) >= 1
        symbol = any(ch.isdigit() for ch in alias) and 1 <= len(letters) <= 2  # "60-Co" is not "60 co-workers"
        case_sensitive = (context_only and n <= 3) or acronym or symbol
        self.patterns.append(Pattern(entry, alias, exact, leet, leet.replace(" ", ""),
                                     tuple(len(x) for x in leet.split(" ")), context_only, window,
                                     any(ch.isdigit() for ch in exact), case_sensitive))

    # ------------------------------------------------------------------ raw hits on one set of views
    def _raw(self, v: _Views) -> list[tuple[int, int, int, str]]:
        """(start, end, pattern id, kind) in E/L coordinates; boundaries, pieces and digits checked."""
        raw = []
        E, L = v.E, v.L
        if self.joined is None:
            return raw
        for end, pids in self.joined.iter(v.J):
            jm = v.jmap
            for pid in pids:
                p = self.patterns[pid]
                s, e = int(jm[end + 1 - len(p.joined)]), int(jm[end]) + 1
                if not _bounded(E, L, s, e):
                    continue
                pieces = L[s:e].split()
                if tuple(len(x) for x in pieces) == p.seg:
                    kind = "exact" if " ".join(E[s:e].split()) == p.exact else "leet"
                elif all(len(x) == 1 for x in pieces) or (len(p.joined) >= MIN_SPLIT_PIECES_LEN and not p.has_digits):
                    kind = "split"
                else:
                    continue
                if _digits_ok(E[s:e].replace(" ", ""), p.exact.replace(" ", "")):
                    raw.append((s, e, pid, kind))
        return raw

    # ------------------------------------------------------------------ batch stage (C speed)
    def candidates(self, texts: list[str]) -> list[int]:
        """Indices of documents with at least one raw hit (a superset of those with matches)."""
        found: set[int] = set()
        groups = ([i for i, t in enumerate(texts) if t.isascii()], [i for i, t in enumerate(texts) if not t.isascii()])
        for idx in groups:
            if not idx:
                continue
            v = _Views(SEP.join(texts[i].replace(SEP, " ") if SEP in texts[i] else texts[i] for i in idx))
            raw = self._raw(v)
            if raw:
                seps = v.separators() if len(idx) > 1 else []
                for s, _, _, _ in raw:
                    found.add(idx[bisect.bisect_left(seps, s)])
        return sorted(found)

    def scan_batch(self, texts: list[str]) -> list[list[Match]]:
        out: list[list[Match]] = [[] for _ in texts]
        for i in self.candidates(texts):
            out[i] = self.scan(texts[i])
        return out

    # ------------------------------------------------------------------ one document, every check
    def scan(self, text: str) -> list[Match]:
        if SEP in text:
            text = text.replace(SEP, " ")
        v = _Views(text)
        raw = self._raw(v)
        if not raw:
            return []
        raw += self._raw_codes(v)
        raw = self._drop_stopped(raw)
        raw = [r for r in raw if not self.patterns[r[2]].context_only or self._has_cue(v.L, r, raw)]
        raw = _drop_overlaps(raw)
        if not raw:
            return []
        omap = offset_map(text)
        out = []
        for s, e, pid, kind in raw:
            p = self.patterns[pid]
            os_, oe = original_span(omap, s, e)
            if p.case_sensitive and not _case_ok(text[os_:oe], p.alias):
                continue
            if kind == "exact" and not text[os_:oe].isascii():
                kind = "folded"
            out.append(Match(p.entry, self.lexicon.entries[p.entry].term, p.alias, os_, oe, kind, p.context_only))
        return out

    def _raw_codes(self, v: _Views):
        if self.codes is None:
            return []
        raw = []
        for end, pids in self.codes.iter(v.E):
            for pid in pids:
                p = self.patterns[pid]
                s, e = end + 1 - len(p.exact), end + 1
                if _bounded(v.E, v.L, s, e, exact=True):
                    raw.append((s, e, pid, "exact"))
        return raw

    def _drop_stopped(self, raw):
        stops = [(s, e) for s, e, pid, _ in raw if self.patterns[pid].entry < 0]
        return [r for r in raw if self.patterns[r[2]].entry >= 0
                and not any(ss <= r[0] and r[1] <= se for ss, se in stops)]

    def _has_cue(self, L: str, r, raw) -> bool:
        s, e, pid, _ = r
        p = self.patterns[pid]
        w = p.window
        cues = self.cues.get(self.lexicon.entries[p.entry].category, set())
        before = L[max(0, s - 40 * w):s].split()[-w:]
        after = L[e:e + 40 * w].split()[:w]
        if any(t in cues for t in before) or any(t in cues for t in after):
            return True
        # a strong term close by is context too, except for single letters
        lo, hi = max(0, s - 12 * w), e + 12 * w
        return w > 1 and any(not self.patterns[q].context_only and q != pid and qs < hi and qe > lo
                             for qs, qe, q, _ in raw)


def _bounded(E: str, L: str, s: int, e: int, exact: bool = False) -> bool:
    """Word boundary; for leet views a literal @$!| next to the span counts as one ("sarin!")."""
    V = E if exact else L
    if s > 0 and V[s - 1].isalnum() and (exact or E[s - 1] not in KEEP_SYMBOLS):
        return False
    if e < len(V) and V[e].isalnum() and (exact or E[e] not in KEEP_SYMBOLS):
        return False
    return True


def _case_ok(original: str, alias: str) -> bool:
    """Every capital of the alias is not lower case in the text (digits and other scripts pass)."""
    a = [ch for ch in alias if ch.isalnum()]
    o = [ch for ch in original if ch.isalnum()]
    if len(a) != len(o):
        return True  # split or folded spelling: the other checks decided
    return all(not (x.isupper() and y.islower()) for x, y in zip(a, o))


def _digits_ok(span: str, pat: str) -> bool:
    """Digits of the spelling must be exact (Pu-239 is not Pu-23g); letters may be leet, but at least
    half of them must be letters in the text (the number 98 is not the code "gb")."""
    if len(span) != len(pat):
        return False
    letters = ok = 0
    for a, b in zip(span, pat):
        if b.isdigit():
            if a != b:
                return False
        elif b.isalpha():
            letters += 1
            ok += a.isalpha()
    return ok * 2 >= letters


def _drop_overlaps(raw):
    """Keep the longest hit where hits overlap ("sulfur mustard" over "mustard"); deterministic order."""
    rank = {"exact": 0, "leet": 1, "split": 2}
    raw = sorted(set(raw), key=lambda r: (r[0], -(r[1] - r[0]), rank[r[3]], r[2]))
    out, last_end = [], -1
    for r in raw:
        if r[0] >= last_end:
            out.append(r)
            last_end = r[1]
    return out


def snippet(text: str, start: int, end: int, words: int = SNIPPET_WORDS) -> str:
    """The match in brackets with at most `words` words (and SNIPPET_CHARS characters) either side."""
    words = max(0, min(words, SNIPPET_WORDS))
    lw = text[max(0, start - SNIPPET_CHARS):start].split()[-words:] if words else []
    rw = text[end:end + SNIPPET_CHARS].split()[:words] if words else []
    return " ".join(lw + ["[" + " ".join(text[start:end].split()) + "]"] + rw)
