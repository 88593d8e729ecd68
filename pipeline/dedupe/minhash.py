"""MinHash signatures and LSH band keys, compiled with numba (no Python loop per shingle).

Words are runs of letters and digits of the lower-cased text (punctuation dropped, digits kept), so
edits to quotes or commas do not hide a duplicate while numbers still tell documents apart. A
shingle is `shingle_size` consecutive words; a document with fewer words is one shingle of all
its words, and one with none is one shingle of its raw text, so short documents are compared too.
Hashes are seeded 64-bit mixes (splitmix64 finaliser), never Python's salted `hash()`.
Permutation k maps a shingle hash x to `(a_k * x + b_k) mod 2^64 >> 32` (multiply-add-shift).
"""
from __future__ import annotations

import re

import numba
import numpy as np
import xxhash

_HAS_WORD = re.compile(r"[A-Za-z0-9\x80-\U0010ffff]")  # superset test; a miss means no word at all
_MASK64 = (1 << 64) - 1


@numba.njit(inline="always")
def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def _signatures(buf, offsets, fallback, shingle_size, perm_a, perm_b, seed):
    n_docs = offsets.shape[0] - 1
    k = perm_a.shape[0]
    sig = np.empty((n_docs, k), dtype=np.uint32)
    words = np.empty(1024, dtype=np.uint64)
    fnv_prime = np.uint64(0x100000001B3)
    shingle_mult = np.uint64(0x9E3779B97F4A7C15)
    for d in range(n_docs):
        # 1. word hashes: a word is a run of ASCII letters/digits or non-ASCII bytes; ASCII
        #    punctuation, '_', U+00A0-U+00BF and U+2000-U+206F (quotes, dashes, spaces) separate
        n_words = 0
        h = np.uint64(0xCBF29CE484222325) ^ seed
        in_word = False
        i = offsets[d]
        end = offsets[d + 1]
        while i < end:
            c = buf[i]
            step = 1
            is_word = (48 <= c <= 57) or (97 <= c <= 122) or (65 <= c <= 90)
            if c >= 128:
                is_word = True
                if c == 0xC2 and i + 1 < end and 0xA0 <= buf[i + 1] <= 0xBF:
                    is_word = False
                    step = 2
                elif c == 0xE2 and i + 2 < end and (buf[i + 1] == 0x80 or buf[i + 1] == 0x81):
                    is_word = False
                    step = 3
            if is_word:
                h = (h ^ np.uint64(c)) * fnv_prime
                in_word = True
            elif in_word:
                if n_words == words.shape[0]:
                    grown = np.empty(words.shape[0] * 2, dtype=np.uint64)
                    grown[:n_words] = words[:n_words]
                    words = grown
                words[n_words] = _mix64(h)
                n_words += 1
                h = np.uint64(0xCBF29CE484222325) ^ seed
                in_word = False
            i += step
        if in_word:
            if n_words == words.shape[0]:
                grown = np.empty(words.shape[0] * 2, dtype=np.uint64)
                grown[:n_words] = words[:n_words]
                words = grown
            words[n_words] = _mix64(h)
            n_words += 1
        # 2. shingles -> min over permutations
        mins = np.full(k, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        if n_words == 0:
            n_sh = 1
        elif n_words < shingle_size:
            n_sh = 1
        else:
            n_sh = n_words - shingle_size + 1
        for s in range(n_sh):
            if n_words == 0:
                x = _mix64(fallback[d] ^ seed)
            else:
                width = shingle_size if n_words >= shingle_size else n_words
                x = seed
                for j in range(width):
                    x = _mix64(x * shingle_mult + words[s + j])
            for p in range(k):
                v = perm_a[p] * x + perm_b[p]
                if v < mins[p]:
                    mins[p] = v
        for p in range(k):
            sig[d, p] = np.uint32(mins[p] >> np.uint64(32))
    return sig


@numba.njit(cache=True, nogil=True)
def _band_keys(sig, bands, rows, seed):
    n = sig.shape[0]
    out = np.empty((n, bands), dtype=np.uint64)
    for d in range(n):
        for b in range(bands):
            h = _mix64(seed + np.uint64(b + 1))
            for r in range(rows):
                h = _mix64(h ^ (np.uint64(sig[d, b * rows + r]) + np.uint64(0x9E3779B97F4A7C15)))
            out[d, b] = h
    return out


class MinHasher:
    def __init__(self, bands: int, rows: int, shingle_size: int, seed: int):
        self.bands, self.rows, self.shingle_size = bands, rows, shingle_size
        self.seed = np.uint64(seed & _MASK64)
        rng = np.random.Generator(np.random.PCG64(seed))
        n = bands * rows
        self.perm_a = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
        self.perm_b = rng.integers(0, 2**63, size=n, dtype=np.uint64)

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(n_docs, bands*rows) uint32 MinHash signatures."""
        norm = [t.lower().encode("utf-8", "surrogatepass") for t in texts]
        lengths = np.fromiter((len(b) for b in norm), dtype=np.int64, count=len(norm))
        offsets = np.zeros(len(norm) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        buf = np.frombuffer(b"".join(norm), dtype=np.uint8) if norm else np.zeros(0, np.uint8)
        fallback = np.fromiter((xxhash.xxh3_64_intdigest(t.encode("utf-8", "surrogatepass"), seed=int(self.seed))
                                if not _HAS_WORD.search(t) else 0 for t in texts),
                               dtype=np.uint64, count=len(texts))
        return _signatures(buf, offsets, fallback, self.shingle_size, self.perm_a, self.perm_b, self.seed)

    def band_keys(self, sig: np.ndarray) -> np.ndarray:
        """(n_docs, bands) uint64 LSH bucket keys."""
        return _band_keys(sig, self.bands, self.rows, self.seed)
