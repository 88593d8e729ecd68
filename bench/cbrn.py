"""CBRN filter throughput on ../shared/data/corpus: MB/s and docs/s per core (CPU time of one process).

Stages: normalise+match (Matcher.scan_batch: views, automaton, per-candidate checks and offsets) and the
classifier (chunked fastText scoring of every document). Prints a table, writes JSON.

Corpus false positives: the default policy's removals on the whole corpus and on the held-out `report` split
(filters.data.corpus: never trained or calibrated on; Wikipedia leads of the labeled set left out), by source
and by path, with the list of removed documents (id, title or headword, score, terms) for a human to skim,
written next to the JSON as <out stem>-removed.tsv.
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
from filters.config import LEVELS  # noqa: E402


def load(corpus: Path, limit_mb: float) -> list[dict]:
    docs, total = [], 0
    for f in sorted(corpus.glob("*.jsonl.zst")):
        for rec in read_jsonl(f):
            rec.setdefault("source", f.stem)
            docs.append(rec)
            total += len(rec["text"].encode("utf-8"))
            if limit_mb and total >= limit_mb * 1e6:
                return docs
    return docs


def path_of(d) -> str:
    """Which rule removed a document: blocklist, or the classifier on the 2+ term / 1 term / no-term path."""
    if d.reason == "cbrn_blocklist":
        return "blocklist"
    n, ev = d.detail.get("n_terms", 0), d.detail.get("evidence") or {}
    if not d.detail.get("escalated"):
        return "no-term"
    if n >= 2:
        return "2+-terms"
    return "1-term+" + "+".join(sorted(ev)) if ev else "1-term"


def title_of(rec: dict) -> str:
    meta = rec.get("meta") or {}
    for k in ("title", "headword"):
        if meta.get(k):
            return str(meta[k])[:80]
    head = " ".join(rec["text"][:70].split())
    return f"{meta['file']}: {head}" if rec.get("source") == "manpages" and meta.get("file") else head


def corpus_false_positives(docs: list[dict], decisions, labeled_titles: set[str]) -> dict:
    """Removal rate by source and by path on the whole corpus and on the held-out report split."""
    from filters.data.corpus import split_of
    out = {}
    for name, keep in (("all", lambda r: True),
                       ("report", lambda r: split_of(r["id"]) == "report" and not (
                           r["source"] == "wikipedia_vital" and (r.get("meta") or {}).get("title") in labeled_titles))):
        idx = [i for i, r in enumerate(docs) if keep(r)]
        by_src: dict[str, list[int]] = {}
        by_path: dict[str, int] = {}
        removed = []
        for i in idx:
            r, d = docs[i], decisions[i]
            c = by_src.setdefault(r["source"], [0, 0])
            c[0] += 1
            if d.decision == "remove":
                c[1] += 1
                path = path_of(d)
                by_path[path] = by_path.get(path, 0) + 1
                removed.append({"id": r["id"], "source": r["source"], "title": title_of(r), "path": path,
                                "score": d.score, "terms": d.terms[:5]})
        n_rm = sum(v[1] for v in by_src.values())
        out[name] = {"docs": len(idx), "removed": n_rm, "rate": round(n_rm / max(1, len(idx)), 6),
                     "by_source": {k: {"docs": v[0], "removed": v[1], "rate": round(v[1] / max(1, v[0]), 6)}
                                   for k, v in sorted(by_src.items())},
                     "by_path": dict(sorted(by_path.items())), "removed_docs": removed}
    return out


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
    ap.add_argument("--model", default="", help="fastText model (default: the shipped one)")
    ap.add_argument("--policy", default="balanced", choices=LEVELS)
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"corpus not found: {corpus}", file=sys.stderr)
        return 2
    from filters.decide import CbrnFilter
    from filters.config import CbrnConfig
    filt = CbrnFilter.from_config(CbrnConfig(model_path=args.model, policy=args.policy))
    docs = load(corpus, args.limit_mb)
    texts = [r["text"] for r in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    n = len(texts)
    filt.matcher.scan_batch(texts[:2000])  # warm the fold cache
    matches, cpu_m, wall_m = timed(filt.matcher.scan_batch, texts, args.batch)
    with_hits = sum(1 for m in matches if m)
    scores, cpu_c, wall_c = timed(filt.classifier.chunk_scores_batch, texts, args.batch)
    decisions, cpu_d, wall_d = timed(filt.decide_batch, texts, args.batch)
    removed = sum(d.decision == "remove" for d in decisions)
    level_shares = {name: sum(name in (d.detail.get("levels") or {}) for d in decisions) for name in LEVELS}
    from filters.data.corpus import labeled_titles
    labeled = REPO.parent / "shared" / "data" / "cbrn_labeled"
    fps = corpus_false_positives(docs, decisions, labeled_titles([labeled / "train.jsonl", labeled / "dev.jsonl"]))
    by_source = fps["all"]["by_source"]
    rows = []
    for name, cpu, wall in (("normalise+match", cpu_m, wall_m), ("classifier (all docs)", cpu_c, wall_c),
                            ("full decision", cpu_d, wall_d)):
        rows.append({"stage": name, "MB": round(mb, 1), "docs": n, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                     "MB/s/core": round(mb / cpu, 1), "docs/s/core": round(n / cpu)})
    print_table(rows, title=f"CBRN filter on {corpus} (per core = CPU time of one process)")
    result = {"corpus": str(corpus), "mb": mb, "docs": n, "stages": rows, "docs_with_terms": with_hits,
              "removed": removed, "removed_by_source": {k: v["removed"] for k, v in by_source.items()},
              "docs_by_source": {k: v["docs"] for k, v in by_source.items()},
              "corpus_false_positives": fps,
              "levels_removed": {k: {"docs": v, "share": round(v / max(1, n), 6)} for k, v in level_shares.items()},
              "fingerprint": filt.fingerprint(), "python": platform.python_version(), "machine": platform.machine()}
    atomic_write_json(args.out, result)
    tsv = Path(args.out).with_name(Path(args.out).stem + "-removed.tsv")
    with open(tsv, "w", encoding="utf-8") as fh:
        fh.write("split\tid\tsource\tpath\tscore\ttitle\tterms\n")
        for name in ("report", "all"):
            for x in fps[name]["removed_docs"]:
                fh.write(f"{name}\t{x['id']}\t{x['source']}\t{x['path']}\t{x['score']}\t{x['title']}\t"
                         f"{'; '.join(x['terms'])}\n")
    print(f"docs with lexicon terms: {with_hits}; removed: {removed} "
          f"({', '.join(f'{k} {v}' for k, v in result['removed_by_source'].items() if v)})")
    for name in ("all", "report"):
        f = fps[name]
        print(f"corpus removals [{name}]: {f['removed']} of {f['docs']} ({100 * f['rate']:.3f} %); by path "
              f"{f['by_path']}; by source " + ", ".join(f"{k} {v['removed']}/{v['docs']}"
                                                        for k, v in f["by_source"].items() if v["removed"]))
    print("share of the corpus each policy level removes: " + ", ".join(
        f"{k} {v} ({100 * v / max(1, n):.3f} %)" for k, v in level_shares.items()))
    print(f"removed documents listed in {tsv}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
