"""Dedupe corpora of any size made from real text, with injected duplicates and their ground truth.

Originals are recombined from ../shared/data/corpus: each is two or three spans of a few hundred
characters cut at spaces from random real documents, so a corpus of millions of distinct documents
reads like the real one. Then `exact` (10 %) copies and `near` (10 %) copies with 1-3 % of their words
deleted, replaced or swapped are injected, everything is shuffled (seeded) and written as
part-NNNN.jsonl.zst files with ground_truth.json.gz in the format of ../shared/data/corpus_dupes
({"injected": {id: {"type", "original_id"}}}), which bench/dedupe_eval.py scores.

    python bench/dedupe_synth.py --docs 300000 --out /tmp/synth-300k
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PER_FILE = 100_000


def real_texts(corpus: Path) -> list[str]:
    from common.io import read_jsonl
    return [r["text"] for f in sorted(corpus.glob("*.jsonl.zst")) for r in read_jsonl(f) if len(r["text"]) > 200]


def _span(rng: random.Random, text: str) -> str:
    n = len(text)
    length = rng.randint(150, 700)
    start = rng.randrange(max(1, n - length))
    a = text.find(" ", start)
    a = 0 if a < 0 or start == 0 else a + 1
    b = text.find(" ", a + length)
    return text[a:b if b > 0 else n].strip()


def _near(rng: random.Random, text: str, pool: list[str]) -> str:
    words = text.split(" ")
    rate = rng.uniform(0.01, 0.03)
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue                                   # deleted
        if r < 2 * rate / 3:
            donor = pool[rng.randrange(len(pool))].split(" ", 40)
            out.append(donor[rng.randrange(len(donor) - 1)] if len(donor) > 1 else w)   # replaced
            continue
        out.append(w)
        if r < rate and len(out) > 1:
            out[-1], out[-2] = out[-2], out[-1]        # swapped with its neighbour
    return " ".join(out)


def build(corpus: Path, out: Path, n_docs: int, seed: int = 0, dup_rate: float = 0.1, near_rate: float = 0.1) -> dict:
    """Write the corpus (skipped when `out` already holds one of this size and seed); returns its summary."""
    summary_path = out / "SUMMARY.json"
    if summary_path.is_file():
        s = json.loads(summary_path.read_text())
        if (s.get("docs"), s.get("seed")) == (n_docs, seed):
            return s
    import orjson
    import zstandard
    rng = random.Random(seed)
    pool = real_texts(corpus)
    n_exact, n_near = int(n_docs * dup_rate), int(n_docs * near_rate)
    n_orig = n_docs - n_exact - n_near
    docs: list[tuple[str, str]] = []
    for _ in range(n_orig):
        k = rng.randint(2, 3)
        docs.append(("", "\n\n".join(_span(rng, pool[rng.randrange(len(pool))]) for _ in range(k))))
    injected: list[tuple[int, str, str]] = []     # (original index, type, text)
    for _ in range(n_exact):
        i = rng.randrange(n_orig)
        injected.append((i, "exact", docs[i][1]))
    for _ in range(n_near):
        i = rng.randrange(n_orig)
        injected.append((i, "near", _near(rng, docs[i][1], pool)))
    order = list(range(n_docs))
    rng.shuffle(order)                            # position -> document; ids follow positions
    ids = [""] * n_docs
    texts = [d[1] for d in docs] + [t for _, _, t in injected]
    for pos, doc in enumerate(order):
        ids[doc] = f"syn-{pos:09d}"
    truth = {ids[n_orig + j]: {"type": typ, "original_id": ids[i]} for j, (i, typ, _) in enumerate(injected)}
    out.mkdir(parents=True, exist_ok=True)
    cctx = zstandard.ZstdCompressor(level=3)
    for f, lo in enumerate(range(0, n_docs, PER_FILE)):
        lines = b"".join(orjson.dumps({"id": ids[d], "text": texts[d], "source": "synthetic"}) + b"\n"
                         for d in order[lo:lo + PER_FILE])
        (out / f"part-{f:04d}.jsonl.zst").write_bytes(cctx.compress(lines))
    with gzip.open(out / "ground_truth.json.gz", "wt", encoding="utf-8") as fh:
        json.dump({"summary": {"docs": n_docs, "exact": n_exact, "near": n_near}, "injected": truth}, fh)
    s = {"docs": n_docs, "seed": seed, "exact": n_exact, "near": n_near, "files": -(-n_docs // PER_FILE),
         "text_mb": round(sum(len(t.encode()) for t in texts) / 1e6, 1)}
    summary_path.write_text(json.dumps(s, indent=1) + "\n")
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "corpus"))
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(json.dumps(build(Path(args.corpus), Path(args.out), args.docs, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
