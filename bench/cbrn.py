"""CBRN filter throughput on ../shared/data/corpus: MB/s and docs/s per core (CPU time of one process).

Stages: normalise+match (Matcher.scan_batch: views, automaton, per-candidate checks and offsets) and the
classifier (chunked fastText scoring of every document). Prints a table, writes JSON.
    python bench/cbrn.py [--corpus ../shared/data/corpus] [--out bench/out/cbrn.json] [--limit-mb 0]
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.io import atomic_write_json, read_jsonl  # noqa: E402
from common.progress import print_table  # noqa: E402


def load(corpus: Path, limit_mb: float) -> list[tuple[str, str]]:
    docs, total = [], 0
    for f in sorted(corpus.glob("*.jsonl.zst")):
        for rec in read_jsonl(f):
            docs.append((rec.get("source", f.stem), rec["text"]))
            total += len(rec["text"].encode("utf-8"))
            if limit_mb and total >= limit_mb * 1e6:
                return docs
    return docs


def timed(fn, texts, batch):
    t0, c0 = time.perf_counter(), time.process_time()
    out = []
    for i in range(0, len(texts), batch):
        out += fn(texts[i:i + batch])
    return out, time.process_time() - c0, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "corpus"))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "cbrn.json"))
    ap.add_argument("--limit-mb", type=float, default=0.0, help="stop after this many MB (0 = all)")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"corpus not found: {corpus}", file=sys.stderr)
        return 2
    from filters.decide import CbrnFilter
    filt = CbrnFilter.from_config()
    docs = load(corpus, args.limit_mb)
    texts = [t for _, t in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    n = len(texts)
    filt.matcher.scan_batch(texts[:2000])  # warm the fold cache
    matches, cpu_m, wall_m = timed(filt.matcher.scan_batch, texts, args.batch)
    with_hits = sum(1 for m in matches if m)
    scores, cpu_c, wall_c = timed(filt.classifier.chunk_scores_batch, texts, args.batch)
    decisions, cpu_d, wall_d = timed(filt.decide_batch, texts, args.batch)
    removed = sum(d.decision == "remove" for d in decisions)
    by_source: dict[str, list[int]] = {}
    for (src, _), d in zip(docs, decisions):
        c = by_source.setdefault(src, [0, 0])
        c[0] += 1
        c[1] += d.decision == "remove"
    rows = []
    for name, cpu, wall in (("normalise+match", cpu_m, wall_m), ("classifier (all docs)", cpu_c, wall_c),
                            ("full decision", cpu_d, wall_d)):
        rows.append({"stage": name, "MB": round(mb, 1), "docs": n, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                     "MB/s/core": round(mb / cpu, 1), "docs/s/core": round(n / cpu)})
    print_table(rows, title=f"CBRN filter on {corpus} (per core = CPU time of one process)")
    result = {"corpus": str(corpus), "mb": mb, "docs": n, "stages": rows, "docs_with_terms": with_hits,
              "removed": removed, "removed_by_source": {k: v[1] for k, v in sorted(by_source.items())},
              "docs_by_source": {k: v[0] for k, v in sorted(by_source.items())},
              "fingerprint": filt.fingerprint(), "python": platform.python_version(), "machine": platform.machine()}
    atomic_write_json(args.out, result)
    print(f"docs with lexicon terms: {with_hits}; removed: {removed} "
          f"({', '.join(f'{k} {v}' for k, v in result['removed_by_source'].items() if v)})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
