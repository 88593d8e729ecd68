"""Dedupe benchmark: our ingest + exact/near dedupe vs datatrove's MinHash pipeline, same corpus, same run.

    python bench/dedupe.py [--input ../shared/data/corpus_dupes] [--workers 2] [--sweep] [--skip-peer]

Prints a table and writes JSON (default bench/out/dedupe.json): per stage/step wall time, docs/s and
MB/s, peak RSS of the process tree, recall/precision against the injected ground truth (recall on
near duplicates overall and on those with word-5-gram Jaccard >= 0.7, the issue's target set), and
a single-core "floor" (read + parse + hash of every document). `--sweep` also runs other
bands x rows / threshold settings; the defaults in pipeline/dedupe were chosen from that table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.datatrove_minhash import TreeSampler  # noqa: E402  (stdlib-only sampler shared with the peer)
from bench.dedupe_eval import load_ground_truth, score  # noqa: E402

WORD = re.compile(r"[^\W_]+")
SWEEP = [(14, 8, 0.7), (16, 6, 0.7), (20, 5, 0.7), (20, 5, 0.6), (25, 4, 0.7), (10, 10, 0.6)]


def text_stats(files: list[Path]) -> tuple[int, int, float]:
    """(docs, text bytes, floor seconds): read + orjson parse + xxh3 of every text, one core."""
    import orjson
    import xxhash

    from common.io import iter_lines
    t0 = time.process_time()
    n = size = 0
    for f in files:
        for _, line in iter_lines(f):
            text = orjson.loads(line)["text"].encode()
            xxhash.xxh3_64_intdigest(text)
            n += 1
            size += len(text)
    return n, size, time.process_time() - t0


def similar_near_pairs(files: list[Path], truth: dict, threshold: float = 0.7) -> set[str]:
    """Injected near duplicates whose word-5-gram Jaccard with their original is >= threshold."""
    from common.io import read_jsonl
    near = {k: v["original_id"] for k, v in truth.items() if v["type"] == "near"}
    wanted = set(near) | set(near.values())
    texts = {d["id"]: d["text"] for f in files for d in read_jsonl(f) if d["id"] in wanted}

    def shingles(t):
        w = WORD.findall(t.lower())
        return {tuple(w)} if len(w) < 5 else {tuple(w[i:i + 5]) for i in range(len(w) - 4)}
    out = set()
    for k, o in near.items():
        a, b = shingles(texts[k]), shingles(texts[o])
        if len(a & b) / len(a | b) >= threshold:
            out.add(k)
    return out


def run_ours(input_dir: Path, work: Path, workers: int, bands: int, rows: int, threshold: float) -> dict:
    run = work / f"ours-{bands}x{rows}-{threshold}"
    shutil.rmtree(run, ignore_errors=True)
    sampler = TreeSampler().start()
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipeline", "run", "--run-dir", str(run), "--stages", "ingest,dedupe",
           "--workers", str(workers), "--input", str(input_dir / "part-*.jsonl.zst"),
           "--set", f"dedupe.bands={bands}", "--set", f"dedupe.rows={rows}", "--set", f"dedupe.threshold={threshold}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROGRESS": "1"}
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    sampler.stop()
    from common.io import read_json
    from pipeline.ledger import read_ledger
    t = read_ledger(run / "dedupe")
    removed = [i for i, d in zip(t.column("id").to_pylist(), t.column("decision").to_pylist()) if d == "removed"]
    timing = {s: read_json(run / s / "timing.json") for s in ("ingest", "dedupe")}
    shutil.rmtree(run / "dedupe" / "work", ignore_errors=True)
    return {"tool": "ours", "bands": bands, "rows": rows, "threshold": threshold, "wall_s": wall,
            "peak_rss_mb": sampler.peak_rss / 2**20, "timing": timing, "removed_ids": removed}


def run_peer(input_dir: Path, work: Path, workers: int, bands: int, rows: int) -> dict:
    from bench.peers import PEER_REQUIREMENTS, ensure_venv
    py = ensure_venv("datatrove", PEER_REQUIREMENTS["datatrove"])
    out = work / "datatrove.json"
    subprocess.run([str(py), str(REPO / "bench" / "datatrove_minhash.py"), "--input", str(input_dir),
                    "--work", str(work / "dt-work"), "--out", str(out), "--bands", str(bands), "--rows", str(rows),
                    "--ngram", "5", "--tasks", str(workers), "--workers", str(workers), "--no-kept-output"],
                   check=True, cwd=REPO)
    res = json.loads(out.read_text())
    shutil.rmtree(work / "dt-work", ignore_errors=True)
    return res


def quality(removed: list[str], truth: dict, similar: set[str]) -> dict:
    s = score(removed, truth)
    removed_set = set(removed)
    hit = sum(1 for k in similar if k in removed_set or truth[k]["original_id"] in removed_set)
    return {"precision": s["precision"], "recall_exact": s["recall"]["exact"], "recall_near": s["recall"]["near"],
            "recall_near_j07": hit / len(similar), "removed": s["n_removed"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "corpus_dupes"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sweep", action="store_true", help="also run other bands x rows / thresholds")
    ap.add_argument("--skip-peer", action="store_true", help="don't run datatrove")
    ap.add_argument("--work", default=str(REPO / "bench" / "out" / "dedupe-work"))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "dedupe.json"))
    args = ap.parse_args(argv)
    input_dir = Path(args.input)
    if not (input_dir / "ground_truth.json.gz").is_file():
        print(f"skipped: {input_dir} (with ground_truth.json.gz) not found", file=sys.stderr)
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    files = sorted(input_dir.glob("part-*.jsonl.zst"))
    truth = load_ground_truth(input_dir / "ground_truth.json.gz")["injected"]
    n_docs, n_bytes, floor_s = text_stats(files)
    similar = similar_near_pairs(files, truth)
    mb = n_bytes / 1e6

    from common.config import load
    d = load().dedupe
    configs = [(d.bands, d.rows, d.threshold)] + ([c for c in SWEEP if c != (d.bands, d.rows, d.threshold)]
                                                   if args.sweep else [])
    rows, results = [], {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                     "python": platform.python_version()},
                         "corpus": {"docs": n_docs, "text_mb": round(mb, 1), "similar_near_pairs": len(similar)},
                         "floor": {"docs_per_s_one_core": round(n_docs / floor_s), "what": "read+parse+xxh3, 1 core"},
                         "ours": [], "datatrove": None}
    for bands, rws, th in configs:
        r = run_ours(input_dir, work, args.workers, bands, rws, th)
        q = quality(r.pop("removed_ids"), truth, similar)
        dd = r["timing"]["dedupe"]
        entry = {**{k: r[k] for k in ("bands", "rows", "threshold")}, **q,
                 "ingest_docs_per_s": round(n_docs / r["timing"]["ingest"]["wall_s"]),
                 "dedupe_docs_per_s": round(n_docs / dd["wall_s"]), "dedupe_mb_per_s": round(mb / dd["wall_s"], 2),
                 "steps": {k: {"wall_s": v["wall_s"], "docs_per_s": round(n_docs / max(v["wall_s"], 1e-9))}
                           for k, v in dd["steps"].items()},
                 "total_wall_s": round(r["wall_s"], 1), "peak_rss_mb": round(r["peak_rss_mb"])}
        results["ours"].append(entry)
        rows.append({"tool": "ours", "bands x rows": f"{bands}x{rws}", "verify": th,
                     "near docs/s": f"{entry['dedupe_docs_per_s']:,}", "MB/s": entry["dedupe_mb_per_s"],
                     "precision": f"{q['precision']:.4f}", "recall exact": f"{q['recall_exact']:.4f}",
                     "recall near": f"{q['recall_near']:.4f}", "near J>=.7": f"{q['recall_near_j07']:.4f}",
                     "peak RSS MB": entry["peak_rss_mb"]})
        print(rows[-1], flush=True)
    if not args.skip_peer:
        p = run_peer(input_dir, work, args.workers, 14, 8)
        q = quality(p["removed_ids"], truth, similar)
        dt = {"bands": 14, "rows": 8, **q, "dedupe_docs_per_s": round(n_docs / p["total_wall_s"]),
              "dedupe_mb_per_s": round(mb / p["total_wall_s"], 2),
              "steps": {k: {"wall_s": v["wall_s"], "docs_per_s": v.get("docs_per_s")} for k, v in p["stages"].items()},
              "peak_rss_mb": round(p.get("memory", {}).get("peak_tree_rss_mb") or 0) or None,
              "version": p.get("version")}
        results["datatrove"] = dt
        rows.append({"tool": f"datatrove {p.get('version', '')}", "bands x rows": "14x8", "verify": "-",
                     "near docs/s": f"{dt['dedupe_docs_per_s']:,}", "MB/s": dt["dedupe_mb_per_s"],
                     "precision": f"{q['precision']:.4f}", "recall exact": f"{q['recall_exact']:.4f}",
                     "recall near": f"{q['recall_near']:.4f}", "near J>=.7": f"{q['recall_near_j07']:.4f}",
                     "peak RSS MB": dt["peak_rss_mb"]})
        ours = results["ours"][0]["dedupe_docs_per_s"]
        results["speedup_vs_datatrove"] = round(ours / dt["dedupe_docs_per_s"], 1)
    from common.progress import print_table
    print()
    print_table(rows, title=f"dedupe on {input_dir.name}: {n_docs:,} docs, {mb:.1f} MB, "
                            f"{args.workers} workers (floor: {results['floor']['docs_per_s_one_core']:,} docs/s/core)")
    if "speedup_vs_datatrove" in results:
        print(f"near-dedupe speedup vs datatrove: {results['speedup_vs_datatrove']}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
