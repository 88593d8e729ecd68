"""`python -m pipeline tokenizer train|from-tiktoken ...`: make a tokenizer.json outside a run.

    tokenizer train --input 'RUN/cbrn/shards/*.jsonl.zst' --vocab-size 8192 --out tokenizer.json
    tokenizer from-tiktoken --ranks o200k_base.tiktoken --out o200k_harmony.json

`train` reads JSONL (.jsonl/.gz/.zst), parquet or HF dataset dirs (the `text` field) and is
deterministic: the same input gives the same bytes. Train on filtered text (the cbrn stage's shards);
this command cannot tell, so it says what it read.
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="tokenizer_cmd", required=True)
    t = sub.add_parser("train", help="train a byte-level BPE (HF tokenizers) on documents")
    t.add_argument("--input", action="append", required=True, metavar="PATH_OR_GLOB",
                   help="JSONL(.gz/.zst), parquet or HF dataset dir; repeatable")
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--min-frequency", type=int, default=2)
    t.add_argument("--text-field", default="text")
    t.add_argument("--out", required=True)
    c = sub.add_parser("from-tiktoken", help="convert a tiktoken ranks file (e.g. o200k_base.tiktoken)")
    c.add_argument("--ranks", required=True, help="lines of 'base64(token bytes) rank'")
    c.add_argument("--out", required=True)


def _texts(patterns: list[str], field: str, counts: dict):
    """Every record's text, in input order; a bad record is an error naming its file and line."""
    from pipeline.readers import InputError, iter_records, resolve_inputs
    for inp in resolve_inputs(patterns):
        for rec in iter_records(inp):
            if rec.error:
                raise InputError(f"{inp.rel}:{rec.line}: {rec.error}: {rec.message}")
            text = rec.obj.get(field) if isinstance(rec.obj, dict) else None
            if not isinstance(text, str):
                raise InputError(f"{inp.rel}:{rec.line}: field {field!r} is missing or not a string")
            counts["docs"] += 1
            counts["chars"] += len(text)
            yield text
        counts["files"] += 1


def run(args) -> int:
    from common.io import atomic_write_bytes, sha256_file
    from pipeline import tokenizer as tk
    if args.tokenizer_cmd == "train":
        if not 300 <= args.vocab_size <= 1 << 31:
            raise ValueError(f"--vocab-size: must be in [300, 2^31], got {args.vocab_size}")
        counts = {"files": 0, "docs": 0, "chars": 0}
        tok = tk.train_bpe(_texts(args.input, args.text_field, counts), args.vocab_size, args.min_frequency)
        print(f"trained on {counts['docs']:,} documents ({counts['chars']:,} characters) from "
              f"{counts['files']} file(s)", file=sys.stderr)
    else:
        tok = tk.tokenizer_from_tiktoken(args.ranks)
    out = atomic_write_bytes(Path(args.out), tok.to_str(pretty=True).encode())
    info = tk.describe(tok, tk.EOD_TOKEN)
    print(f"{out}: vocab {info['vocab_size']}, {tk.EOD_TOKEN} = {info['eod_id']}, sha256 {sha256_file(out)}")
    return 0
