"""Dedupe benchmark: our ingest + exact/near dedupe vs datatrove's MinHash pipeline, same corpus, same run.

    python bench/dedupe.py [--input ../shared/data/corpus_dupes] [--workers 2] [--sweep] [--skip-peer]
                           [--one-file 25000] [--scale [--sizes 30000,300000,3000000] [--peer-max 300000]]

Prints a table and writes JSON (default bench/out/dedupe.json): per stage/step wall time, docs/s and
MB/s, peak RSS of the process tree and of the largest single process, recall/precision against the
injected ground truth (recall on near duplicates overall and on those with word-5-gram Jaccard >= 0.7,
the issue's target set), and a single-core "floor" (read + parse + hash of every document). `--sweep`
also runs other bands x rows / threshold settings; the defaults in pipeline/dedupe were chosen from
that table. Besides the whole corpus, the first `--one-file` documents are benchmarked as ONE .jsonl.gz
file (datatrove gets them as `workers` files, as it reads a file with one task).

`--scale` instead generates corpora of each size from real text (bench/dedupe_synth.py: recombined
spans, 10 % exact and 10 % near duplicates injected, ground truth), runs ours at each size and datatrove
up to --peer-max, and projects the per-step costs to 10^9 documents on a 100-node SLURM cluster.
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


def run_ours(inputs: list[str], work: Path, workers: int, bands: int, rows: int, threshold: float,
             label: str = "", keep_work: bool = False) -> dict:
    run = work / f"ours{label}-{bands}x{rows}-{threshold}"
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pipeline", "run", "--run-dir", str(run), "--stages", "ingest,dedupe",
           "--workers", str(workers), *[a for i in inputs for a in ("--input", i)],
           "--set", f"dedupe.bands={bands}", "--set", f"dedupe.rows={rows}", "--set", f"dedupe.threshold={threshold}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROGRESS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # memory of the pipeline's process tree only (this process holds the ground truth and texts)
    sampler = TreeSampler(root=proc.pid).start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    from common.io import read_json
    from pipeline.ledger import read_ledger
    t = read_ledger(run / "dedupe")
    removed = [i for i, d in zip(t.column("id").to_pylist(), t.column("decision").to_pylist()) if d == "removed"]
    timing = {s: read_json(run / s / "timing.json") for s in ("ingest", "dedupe")}
    work_bytes = {d.name: sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                  for d in (run / "dedupe" / "work").iterdir() if d.is_dir()}
    ingest_tasks = read_json(run / "ingest" / "stats.json").get("tasks")
    if not keep_work:
        shutil.rmtree(run, ignore_errors=True)
    return {"tool": "ours", "bands": bands, "rows": rows, "threshold": threshold, "wall_s": wall,
            "peak_rss_mb": sampler.peak_rss / 2**20, "peak_process_rss_mb": sampler.peak_process_rss / 2**20,
            "timing": timing, "removed_ids": removed, "work_bytes": work_bytes, "ingest_tasks": ingest_tasks}


def run_peer(input_dir: Path | str, work: Path, workers: int, bands: int, rows: int) -> dict:
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


def quality(removed: list[str], truth: dict, similar: set[str] | None, universe: set[str] | None = None) -> dict:
    s = score(removed, truth, universe)
    removed_set = set(removed)
    out = {"precision": s["precision"], "recall_exact": s["recall"]["exact"], "recall_near": s["recall"]["near"],
           "removed": s["n_removed"]}
    if similar is not None:
        if universe is not None:
            similar = {k for k in similar if k in universe and truth[k]["original_id"] in universe}
        hit = sum(1 for k in similar if k in removed_set or truth[k]["original_id"] in removed_set)
        out["recall_near_j07"] = hit / len(similar) if similar else None
    return out


def one_file(files: list[Path], n: int, work: Path, workers: int) -> tuple[Path, Path, set[str]]:
    """The first n documents of `files` as ONE .jsonl.gz (ours) and as `workers` .jsonl.gz files (datatrove,
    which reads a file with one task); returns both and the ids."""
    import gzip

    from common.io import iter_lines
    lines = []
    for f in files:
        for _, line in iter_lines(f):
            lines.append(line)
            if len(lines) == n:
                break
        if len(lines) == n:
            break
    d = work / f"one-file-{n}"
    peer = d / "peer"
    shutil.rmtree(d, ignore_errors=True)
    peer.mkdir(parents=True)
    one = d / "one.jsonl.gz"
    one.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    per = -(-len(lines) // workers)
    for k in range(workers):
        (peer / f"part-{k:04d}.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[k * per:(k + 1) * per]) + b"\n",
                                                                     mtime=0))
    import orjson
    return one, peer, {orjson.loads(x)["id"] for x in lines}


def bench_one(label: str, inputs: list[str], peer_input, truth: dict, similar, universe, n_docs: int, mb: float,
              configs, args, work: Path, keep: dict | None = None) -> tuple[list[dict], dict]:
    """Ours (each config) and datatrove on one corpus; table rows and the JSON entry."""
    rows, entry = [], {"corpus": label, "docs": n_docs, "text_mb": round(mb, 1), "ours": [], "datatrove": None}
    for bands, rws, th in configs:
        r = run_ours(inputs, work, args.workers, bands, rws, th, label=label)
        q = quality(r.pop("removed_ids"), truth, similar, universe)
        dd, ing = r["timing"]["dedupe"], r["timing"]["ingest"]
        e = {**{k: r[k] for k in ("bands", "rows", "threshold")}, **q,
             "ingest_tasks": r["ingest_tasks"], "ingest_docs_per_s": round(n_docs / ing["wall_s"]),
             "dedupe_docs_per_s": round(n_docs / dd["wall_s"]), "dedupe_mb_per_s": round(mb / dd["wall_s"], 2),
             "end_to_end_s": round(r["wall_s"], 2), "end_to_end_docs_per_s": round(n_docs / r["wall_s"]),
             "steps": {k: {"wall_s": v["wall_s"], "tasks": v["tasks"], "peak_task_rss_mb": v.get("peak_task_rss_mb"),
                           "peak_task_anon_mb": v.get("peak_task_anon_mb"),
                           "docs_per_s": round(n_docs / max(v["wall_s"], 1e-9))} for k, v in dd["steps"].items()},
             "ingest_peak_task_rss_mb": max((v.get("peak_task_rss_mb") or 0) for v in ing["steps"].values()),
             "ingest_wall_s": ing["wall_s"], "work_bytes_per_doc": {k: round(v / n_docs, 1)
                                                                  for k, v in r["work_bytes"].items()},
             "peak_rss_mb": round(r["peak_rss_mb"]), "peak_process_rss_mb": round(r["peak_process_rss_mb"])}
        entry["ours"].append(e)
        rows.append({"corpus": label, "tool": "ours", "bands x rows": f"{bands}x{rws}", "docs": f"{n_docs:,}",
                     "dedupe docs/s": f"{e['dedupe_docs_per_s']:,}", "end-to-end s": e["end_to_end_s"],
                     "precision": f"{q['precision']:.4f}", "recall exact": f"{q['recall_exact']:.4f}",
                     "recall near": f"{q['recall_near']:.4f}",
                     "near J>=.7": "-" if q.get("recall_near_j07") is None else f"{q['recall_near_j07']:.4f}",
                     "peak RSS MB tree / process": f"{e['peak_rss_mb']} / {e['peak_process_rss_mb']}"})
        print(rows[-1], flush=True)
    if peer_input is not None:
        pr = run_peer(peer_input, work, args.workers, 14, 8)
        q = quality(pr["removed_ids"], truth, similar, universe)
        dt = {"bands": 14, "rows": 8, **q, "dedupe_docs_per_s": round(n_docs / pr["total_wall_s"]),
              "dedupe_mb_per_s": round(mb / pr["total_wall_s"], 2), "total_wall_s": pr["total_wall_s"],
              "steps": {k: {"wall_s": v["wall_s"], "docs_per_s": v.get("docs_per_s")} for k, v in pr["stages"].items()},
              "peak_rss_mb": round(pr.get("memory", {}).get("peak_tree_rss_mb") or 0) or None,
              "version": pr.get("version")}
        entry["datatrove"] = dt
        rows.append({"corpus": label, "tool": f"datatrove {pr.get('version', '')}", "bands x rows": "14x8",
                     "docs": f"{n_docs:,}", "dedupe docs/s": f"{dt['dedupe_docs_per_s']:,}",
                     "end-to-end s": round(pr["total_wall_s"], 2),
                     "precision": f"{q['precision']:.4f}", "recall exact": f"{q['recall_exact']:.4f}",
                     "recall near": f"{q['recall_near']:.4f}",
                     "near J>=.7": "-" if q.get("recall_near_j07") is None else f"{q['recall_near_j07']:.4f}",
                     "peak RSS MB tree / process": f"{dt['peak_rss_mb']} / -"})
        entry["speedup_vs_datatrove"] = round(entry["ours"][0]["dedupe_docs_per_s"] / dt["dedupe_docs_per_s"], 1)
        entry["end_to_end_speedup_vs_datatrove"] = round(pr["total_wall_s"] / entry["ours"][0]["end_to_end_s"], 1)
    return rows, entry


def projection(entry: dict, workers: int, docs: float = 1e9, nodes: int = 100, cores: int = 64) -> dict:
    """Per-step wall time at 10^9 documents on `nodes` x `cores`, from the measured per-document cost of the
    largest run (wall x workers / docs for steps that used every worker, wall / docs for one-task steps)."""
    from pipeline.dedupe import DedupeConfig
    from pipeline.dedupe.steps import bucket_partitions
    e, n = entry["ours"][0], entry["docs"]
    out, total = {}, 0.0
    steps = {"ingest": {"wall_s": e["ingest_wall_s"], "tasks": e["ingest_tasks"]}, **e["steps"]}
    # task counts at scale: ingest, signatures and filter one per part or shard (as many as the cores);
    # buckets as many as bucket_partitions sizes for 10^9 documents; clusters one
    at_scale = {"buckets": bucket_partitions(DedupeConfig(), int(docs)), "clusters": 1}
    for name, st in steps.items():
        parallel = name != "clusters"
        used = min(workers, st.get("tasks") or workers) if parallel else 1
        per_doc = st["wall_s"] * used / n                  # core-seconds per document
        width = min(nodes * cores, at_scale.get(name, nodes * cores))
        secs = per_doc * docs / width
        out[name] = {"core_s_per_doc": per_doc, "parallel": parallel, "tasks_at_scale": width,
                     "projected_s": round(secs)}
        total += secs
    bytes_per_doc = e["work_bytes_per_doc"]
    # the cluster task's memory: two parent arrays (4 bytes a document, 8 from 2^31 documents) and a state
    # byte per document, plus number, kind, kept document and cluster of each removed one (x2 while sorted)
    removed = e["removed"] / n
    cluster_gb = docs * (2 * (4 if docs < 2**31 else 8) + 1 + removed * 2 * (8 + 1 + 8 + 8)) / 1e9
    return {"docs": docs, "nodes": nodes, "cores_per_node": cores, "steps": out, "total_s": round(total),
            "intermediate_bytes_per_doc": bytes_per_doc,
            "intermediate_tb": round(sum(bytes_per_doc.values()) * docs / 1e12, 2),
            "cluster_task_memory_gb": round(cluster_gb, 1)}


def scale_main(args) -> int:
    from bench.dedupe_synth import build
    from pipeline.dedupe import DedupeConfig
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"skipped: {corpus} not found", file=sys.stderr)
        return 0
    d = DedupeConfig()
    work = Path(args.work)
    rows, entries = [], []
    for n in [int(x) for x in args.sizes.split(",")]:
        out = work / f"synth-{n}"
        t0 = time.perf_counter()
        summ = build(corpus, out, n)
        print(f"corpus of {n:,} documents ready in {time.perf_counter() - t0:.0f} s: {summ}", flush=True)
        truth = load_ground_truth(out / "ground_truth.json.gz")["injected"]
        similar = similar_near_pairs(sorted(out.glob("part-*.jsonl.zst")), truth)
        peer = out if n <= args.peer_max and not args.skip_peer else None
        r, e = bench_one(f"synth-{n}", [str(out / "part-*.jsonl.zst")], peer, truth, similar, None, n,
                         summ["text_mb"], [(d.bands, d.rows, d.threshold)], args, work)
        rows += r
        entries.append(e)
    proj = projection(entries[-1], args.workers)
    from common.progress import print_table
    print()
    print_table(rows, title=f"dedupe at scale ({args.workers} workers; datatrove up to {args.peer_max:,} docs)")
    # each task's own peak resident memory (reset at task start), the largest per step: what grows with the corpus
    print_table([{"docs": f"{e['docs']:,}", "ingest": e["ours"][0]["ingest_peak_task_rss_mb"],
                  **{k: f"{v.get('peak_task_rss_mb')} / {v.get('peak_task_anon_mb')}"
                     for k, v in e["ours"][0]["steps"].items()}} for e in entries],
                title="\npeak memory of one task, MB, resident / anonymous (largest task of each step; the worker's "
                      "imports, ~130 MB anonymous, included)")
    print_table([{"step": k, "parallel": "yes" if v["parallel"] else "NO (one task)", "tasks": v["tasks_at_scale"],
                  "core-s/doc": f"{v['core_s_per_doc']:.2e}", "projected": f"{v['projected_s']:,} s"}
                 for k, v in proj["steps"].items()],
                title=f"\nprojection to {proj['docs']:.0e} docs on {proj['nodes']} nodes x {proj['cores_per_node']} cores "
                      f"(from the {entries[-1]['docs']:,}-doc run): {proj['total_s']:,} s; intermediate data "
                      f"{proj['intermediate_tb']} TB ({proj['intermediate_bytes_per_doc']} bytes/doc); the one "
                      f"cluster task holds ~{proj['cluster_task_memory_gb']} GB")
    res = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "workers": args.workers, "scale": entries, "projection": proj}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "corpus_dupes"))
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "data" / "corpus"),
                    help="real text the --scale corpora are made from")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sweep", action="store_true", help="also run other bands x rows / thresholds")
    ap.add_argument("--skip-peer", action="store_true", help="don't run datatrove")
    ap.add_argument("--one-file", type=int, default=25_000, help="documents in the one-file benchmark (0 = none)")
    ap.add_argument("--scale", action="store_true", help="generated corpora of --sizes documents instead")
    ap.add_argument("--sizes", default="30000,300000,3000000")
    ap.add_argument("--peer-max", type=int, default=300_000, help="largest --scale corpus datatrove runs on")
    ap.add_argument("--work", default=str(REPO / "bench" / "out" / "dedupe-work"))
    ap.add_argument("--out", default=None, help="JSON (default bench/out/dedupe.json, --scale: dedupe-scale.json)")
    args = ap.parse_args(argv)
    args.out = args.out or str(REPO / "bench" / "out" / ("dedupe-scale.json" if args.scale else "dedupe.json"))
    if args.scale:
        return scale_main(args)
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

    from pipeline.dedupe import DedupeConfig
    d = DedupeConfig()
    configs = [(d.bands, d.rows, d.threshold)] + ([c for c in SWEEP if c != (d.bands, d.rows, d.threshold)]
                                                   if args.sweep else [])
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "python": platform.python_version()},
               "floor": {"docs_per_s_one_core": round(n_docs / floor_s), "what": "read+parse+xxh3, 1 core"}}
    rows = []
    if args.one_file:
        one, peer_dir, ids = one_file(files, args.one_file, work, args.workers)
        one_mb = mb * len(ids) / n_docs
        r, results["one_file"] = bench_one(f"one file ({len(ids):,} docs)", [str(one)],
                                           None if args.skip_peer else peer_dir, truth, similar, ids, len(ids),
                                           one_mb, configs[:1], args, work)
        rows += r
    r, results["corpus"] = bench_one(input_dir.name, [str(input_dir / "part-*.jsonl.zst")],
                                     None if args.skip_peer else input_dir, truth, similar, None, n_docs, mb,
                                     configs, args, work)
    rows += r
    from common.progress import print_table
    print()
    print_table(rows, title=f"dedupe: {args.workers} workers (floor: {results['floor']['docs_per_s_one_core']:,} "
                            f"docs/s/core)")
    for key in ("one_file", "corpus"):
        if results.get(key, {}).get("speedup_vs_datatrove"):
            print(f"{results[key]['corpus']}: near-dedupe speedup vs datatrove {results[key]['speedup_vs_datatrove']}x "
                  f"(end to end, our interpreter start included: {results[key]['end_to_end_speedup_vs_datatrove']}x)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
