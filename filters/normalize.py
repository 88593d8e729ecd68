"""Evasion-resistant normalisation: three aligned views of a text, built with translate tables.

exact view E: per-character fold (NFKC, homoglyphs to ASCII, case fold, accents stripped, zero-width
    and soft hyphens deleted, every separator/punctuation -> " "). Runs of spaces are left as they
    are: the joined view makes them irrelevant for matching.
    Digits are kept, so "Cs-137" -> "cs 137" and CAS "107-44-8" -> "107 44 8".
leet view L: E translated char-for-char (same length, same offsets): digits and @$!| become letters
    and "l" becomes "i" (1/l/i are one class), so "s4r1n" and "sarin" meet. Patterns that contain
    digits are verified back against E, so folding never breaks "Pu-239" or CAS numbers.
joined view J: L without spaces, for terms split into pieces ("s a r i n", "anth-rax").

Everything per character is a table lookup over the whole string (no Python loop per char); the
offset map back to the ORIGINAL text is built only for documents that have hits (`offset_map`).
"""
from __future__ import annotations

import unicodedata

import numpy as np

SEP = "\x00"  # document separator inside a batch; survives every view unchanged

_ZERO_WIDTH = {0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180E, 0x200B,
               0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062,
               0x2063, 0x2064, 0x2066, 0x2067, 0x2068, 0x2069, 0x3164, 0xFEFF, 0xFFA0}
_ZERO_WIDTH |= set(range(0xFE00, 0xFE10)) | set(range(0xE0000, 0xE0080)) | set(range(0xE0100, 0xE01F0))

# Look-alikes that NFKC leaves alone. Checked before case folding, so capitals map by their shape.
HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "ү": "y", "ѵ": "v", "ԍ": "g", "п": "n", "г": "r", "ь": "b", "з": "3",
    "А": "a", "В": "b", "Е": "e", "Ё": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ї": "i", "Ј": "j", "Ԛ": "q", "Ԝ": "w", "Ү": "y", "Ӏ": "l",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ς": "s",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p",
    "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c",
    # Latin and others
    "ı": "i", "ɩ": "i", "ɑ": "a", "ɒ": "a", "ʀ": "r", "ʏ": "y", "ɪ": "i", "ꞵ": "b", "ᴀ": "a", "ʙ": "b", "ᴄ": "c",
    "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d",
    "ħ": "h", "ł": "l", "Ł": "l", "ŀ": "l", "ƒ": "f", "µ": "u", "×": "x", "æ": "ae", "œ": "oe",
}

KEEP_SYMBOLS = "@$!|"  # literal in E, letters in L ("@nthr@x", "$arin", "r!cin")
LEET = {"0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "i", "l": "i"}


def fold_char(ch: str) -> str:
    """The exact-view fold of one character (may be "", one char, or several)."""
    cp = ord(ch)
    if ch == SEP:
        return SEP
    if cp < 128:
        if ch.isalnum() or ch in KEEP_SYMBOLS:
            return ch.lower()
        return " "
    if cp in _ZERO_WIDTH:
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch):
        c = HOMOGLYPHS.get(c, c)
        for c2 in c.casefold():
            c2 = HOMOGLYPHS.get(c2, c2)
            for c3 in unicodedata.normalize("NFKD", c2):
                if unicodedata.combining(c3) or ord(c3) in _ZERO_WIDTH:
                    continue
                if unicodedata.category(c3) == "Mn":
                    continue
                if c3.isdigit() and not c3.isascii():
                    d = unicodedata.digit(c3, None)
                    c3 = str(d) if d is not None else " "
                if c3.isalnum() or c3 in KEEP_SYMBOLS:
                    out.append(c3)
                elif out and out[-1] == " ":
                    continue
                else:
                    out.append(" ")
    return "".join(out)


class _FoldTable(dict):
    """str.translate table that folds characters on first sight and caches them (per process)."""

    def __missing__(self, cp: int) -> str:
        value = fold_char(chr(cp))
        self[cp] = value
        return value


FOLD = _FoldTable()
for _cp in range(128):
    FOLD[_cp] = fold_char(chr(_cp))
ASCII_FOLD_BYTES = bytes(ord(FOLD[c]) for c in range(128)) + bytes(range(128, 256))
_LEET_STR = str.maketrans(LEET)
LEET_BYTES = bytes.maketrans("".join(LEET).encode(), "".join(LEET.values()).encode())


def exact_view(text: str) -> str:
    """E: the folded text (separators become single spaces; runs are not collapsed so offsets stay simple)."""
    if text.isascii():
        return text.encode("ascii").translate(ASCII_FOLD_BYTES).decode("ascii")
    return text.translate(FOLD)


def leet_view(exact: str) -> str:
    """L: same length as E; digits and @$!| folded to letters, l folded to i."""
    if exact.isascii():
        return exact.encode("ascii").translate(LEET_BYTES).decode("ascii")
    return exact.translate(_LEET_STR)


def _squeeze(s: str) -> str:
    return " ".join(x for x in s.split(" ") if x)


def normalize_term(term: str) -> str:
    """E of a lexicon name with single spaces and no outer spaces (the form patterns are stored in)."""
    return _squeeze(exact_view(term))


def _codepoints(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-32-le"), dtype="<u4")


def offset_map(text: str) -> np.ndarray:
    """For the document `text`, an int array m with len(m) == len(E)+1: E[i] came from text[m[i]].

    m[len(E)] == len(text), so the original span of E[s:e] is text[m[s]:m[e-1]+1].
    """
    if text.isascii():  # the ASCII fold is one character for one character
        return np.arange(len(text) + 1, dtype=np.int64)
    cps = _codepoints(text)
    n = len(cps)
    uniq, inv = np.unique(cps, return_inverse=True)
    lens = np.fromiter((len(FOLD[int(c)]) for c in uniq), dtype=np.int64, count=len(uniq))
    src = np.repeat(np.arange(n, dtype=np.int64), lens[inv])
    if len(src) != len(text.translate(FOLD)):  # never silently mis-map
        raise RuntimeError("offset map length mismatch")
    return np.concatenate([src, np.array([n], dtype=np.int64)])


def original_span(omap: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Span in the original text for the E/L span [start, end)."""
    return int(omap[start]), int(omap[end - 1]) + 1
