"""Tokenizers for the tokenize stage: train a byte-level BPE, load a tokenizer.json, convert tiktoken ranks.

Only byte-level BPE is accepted (GPT-2 / GPT-4o / Llama-3 style): every byte is in the vocabulary, so
any text encodes, and the ByteLevel decoder gives back the exact bytes. Nothing here downloads.

Special tokens are those of GPT-OSS's `o200k_harmony`: `<|endoftext|>` ends every document; the Harmony
chat tokens (`<|start|>`, `<|end|>`, `<|message|>`, ...) are reserved for later post-training data.
Document text is encoded with `encode_special_tokens = True`, so a literal "<|end|>" inside a
document is ordinary text, never a control token.
"""
from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Iterable

import numpy as np
import orjson

EOD_TOKEN = "<|endoftext|>"
# o200k_harmony's special tokens (tiktoken_ext/openai_public.py): ids counted from the end of the ranks
# (199998 in o200k). Id 200018 is also named <|reserved_200018|> there; one name per id here.
_HARMONY_BASE = 199998
HARMONY_NAMED = {
    "<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|return|>": 200002, "<|constrain|>": 200003,
    "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007, "<|message|>": 200008,
    "<|call|>": 200012, "<|endofprompt|>": 200018,
}
HARMONY_LAST = 201087
# a trained tokenizer gets the named ones (ids 0..9, in this order), end-of-document first
TRAINED_SPECIALS = [EOD_TOKEN] + [t for t in HARMONY_NAMED if t != EOD_TOKEN]
HARMONY_CHAT = ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|return|>", "<|call|>")

# o200k's pre-tokenization pattern (tiktoken o200k_base, also used by o200k_harmony)
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


class TokenizerError(ValueError):
    """A tokenizer file that cannot be used; the message names the file and the field or line."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map that byte-level BPE vocabularies are written in."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _byte_level_parts():
    from tokenizers import Regex, decoders, pre_tokenizers
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(O200K_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    return pre, decoders.ByteLevel()


# ---------------------------------------------------------------- training

def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, length: int | None = None):
    """Train a byte-level BPE on `texts`; deterministic (same texts -> same tokenizer.json bytes).

    HF's BPE trainer breaks ties between equally frequent pairs by pair id, and the alphabet is
    the fixed 256 bytes, so the result does not depend on thread count or hash seeds (tested).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = _byte_level_parts()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=TRAINED_SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    return tok


# ---------------------------------------------------------------- tiktoken ranks files

def read_tiktoken_ranks(path: str | Path) -> dict[bytes, int]:
    """Parse tiktoken's format: one `base64(token bytes) rank` per line; ranks must be 0..n-1."""
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise TokenizerError(f"{path}:{lineno}: expected 'base64_token rank', got {line[:80]!r}")
            try:
                token = base64.b64decode(parts[0], validate=True)
                rank = int(parts[1])
            except (binascii.Error, ValueError) as e:
                raise TokenizerError(f"{path}:{lineno}: bad token or rank: {e}") from None
            if not token:
                raise TokenizerError(f"{path}:{lineno}: empty token")
            if token in ranks:
                raise TokenizerError(f"{path}:{lineno}: token {token!r} listed twice")
            ranks[token] = rank
    if not ranks:
        raise TokenizerError(f"{path}: no ranks")
    if sorted(ranks.values()) != list(range(len(ranks))):
        seen = set(ranks.values())
        gap = next((r for r in range(len(ranks)) if r not in seen), len(ranks))
        raise TokenizerError(f"{path}: ranks must be 0..{len(ranks) - 1} without gaps or repeats (rank {gap} missing)")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(f"{path}: not a byte-level vocabulary: {len(missing)} single bytes have no rank "
                             f"(first: {missing[0]:#04x})")
    return ranks


def _merge_of(token: bytes, rank: int, ranks: dict[bytes, int]) -> tuple[bytes, bytes]:
    """The last merge that builds `token`: run tiktoken's rank-ordered merging below `rank`."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best, best_rank = -1, rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best, best_rank = i, r
        if best < 0:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    if len(parts) != 2:
        raise TokenizerError(f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens")
    return parts[0], parts[1]


def tokenizer_from_tiktoken(path: str | Path):
    """An HF tokenizer equivalent to tiktoken's encoding of a ranks file (o200k pattern, harmony specials).

    Merges are derived from the ranks (each token's last merge under tiktoken's lowest-rank-first
    rule); `ignore_merges=True` mirrors tiktoken's whole-piece lookup. The o200k_harmony special
    tokens sit after the ranks at their o200k_harmony offsets: for the real o200k file (199,998
    ranks) exactly ids 199998..201087, the rest `<|reserved_N|>`.
    """
    from tokenizers import AddedToken, Tokenizer, models
    ranks = read_tiktoken_ranks(path)
    b2u = bytes_to_unicode()
    enc = lambda bs: "".join(b2u[b] for b in bs)
    ordered = sorted(ranks.items(), key=lambda kv: kv[1])
    vocab = {enc(t): r for t, r in ordered}
    merges = []
    for token, rank in ordered:
        if len(token) > 1:
            a, b = _merge_of(token, rank, ranks)
            merges.append((enc(a), enc(b)))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer, tok.decoder = _byte_level_parts()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in harmony_specials(len(ranks))])
    return tok


def harmony_specials(n_ranks: int) -> list[str]:
    """Special tokens for ids n_ranks, n_ranks+1, ...: o200k_harmony's layout shifted to end at the ranks."""
    named = {i - _HARMONY_BASE: name for name, i in HARMONY_NAMED.items()}
    return [named.get(k, f"<|reserved_{k + _HARMONY_BASE}|>") for k in range(HARMONY_LAST - _HARMONY_BASE + 1)]


# ---------------------------------------------------------------- loading and checking

def load_tokenizer_file(path: str | Path):
    """(tokenizer, kind) from an HF tokenizer.json ("tokenizer.json") or a tiktoken ranks file ("tiktoken")."""
    from tokenizers import Tokenizer
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"tokenizer file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"{"):
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:
            raise TokenizerError(f"{path}: not a usable tokenizer.json: {e}") from None
        check_byte_level(tok, str(path))
        return tok, "tokenizer.json"
    return tokenizer_from_tiktoken(path), "tiktoken"


def _nodes(node) -> list[dict]:
    """A pipeline component and the steps of its Sequence, flattened."""
    if not node:
        return []
    out = [node]
    for key in ("pretokenizers", "decoders", "normalizers"):
        for sub in node.get(key) or []:
            out += _nodes(sub)
    return out


def _types(node) -> list[str]:
    return [n.get("type", "") for n in _nodes(node)]


def check_byte_level(tok, where: str) -> None:
    """Refuse tokenizers that cannot give the document's exact bytes back."""
    j = orjson.loads(tok.to_str())
    if j["model"].get("type") != "BPE":
        raise TokenizerError(f"{where}: model.type is {j['model'].get('type')!r}; only byte-level BPE is supported")
    if "ByteLevel" not in _types(j.get("decoder")):
        raise TokenizerError(f"{where}: decoder has no ByteLevel step ({_types(j.get('decoder'))}); "
                             f"only byte-level BPE round-trips text exactly")
    if "ByteLevel" not in _types(j.get("pre_tokenizer")):
        raise TokenizerError(f"{where}: pre_tokenizer has no ByteLevel step; only byte-level BPE is supported")
    if any(n.get("type") == "ByteLevel" and n.get("add_prefix_space") for n in _nodes(j.get("pre_tokenizer"))):
        raise TokenizerError(f"{where}: pre_tokenizer ByteLevel has add_prefix_space = true: every document would "
                             f"gain a leading space")
    norms = [t for t in _types(j.get("normalizer")) if t not in ("Sequence", "NFC")]
    if norms:
        # NFC is a no-op on ingest's NFC text (and the per-document byte check still guards it)
        raise TokenizerError(f"{where}: normalizer {norms} would change the text; only none or NFC is allowed")


def token_byte_lengths(tok) -> np.ndarray:
    """Bytes each token id decodes to (byte-level: one vocabulary character is one byte)."""
    n = tok.get_vocab_size(with_added_tokens=True)
    lengths = np.zeros(n, dtype=np.int64)
    byte_chars = set(bytes_to_unicode().values())
    added = tok.get_added_tokens_decoder()
    for token, i in tok.get_vocab(with_added_tokens=True).items():
        if i in added:
            lengths[i] = len(added[i].content.encode("utf-8"))
        elif all(c in byte_chars for c in token):
            lengths[i] = len(token)
        else:
            lengths[i] = -1     # not byte-level: never matches, so a document using it is flagged
    return lengths


def open_tokenizer(path: str | Path):
    """The one loader of a run's tokenizer.json (the tokenize stage, the run summary): special-token
    strings inside documents are encoded as plain text."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(path))
    tok.encode_special_tokens = True
    return tok


def token_dtype(vocab_size: int):
    """The smallest dtype megatron-core's index can record that holds every token id."""
    return np.uint16 if vocab_size <= 1 << 16 else np.int32


def describe(tok, eod_token: str) -> dict:
    """Vocab size, end-of-document id and the special tokens present (for stats and the manifest)."""
    eod = tok.token_to_id(eod_token)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    present = {t: tok.token_to_id(t) for t in TRAINED_SPECIALS if tok.token_to_id(t) is not None}
    return {"vocab_size": vocab, "eod_token": eod_token, "eod_id": eod, "special_tokens": present,
            "harmony_chat_tokens": all(t in present for t in HARMONY_CHAT),
            "dtype": np.dtype(token_dtype(vocab)).name}
