"""Tokenize throughput: the stage end to end (read -> encode -> write shards) vs raw `encode_batch`.

    python bench/tokenization.py [--corpus ../shared/data/corpus] [--work /tmp/bench-tokenize] [--reps 3]

Input: the shared corpus, ingested once into `--work` (kept between runs). The tokenizer is trained
by the stage on that text (or `--tokenizer FILE`). Compared on the same text:
  raw       `tokenizer.encode_batch` over the ingested texts already in memory, in the stage's batches
            (`tokenize.batch_bytes`), same tokenizer settings: the practical limit;
  e2e       the stage's encode task, in this process with imports done: reads the zstd shard, encodes,
            writes .bin/.idx (megatron-core builder), ledger, provenance, marker.
            Measured in pairs, shard by shard, raw and e2e back to back in alternating order, so a
            machine shared with other jobs slows both alike; ratio = sum(raw) / sum(e2e) per rep, and
            "best of" = per shard the fastest of the reps (as timeit does), summed.
  cli       `python -m pipeline run --stages tokenize --workers N` as a user runs it (encode step wall
            from timing.json), between two raw passes over the whole corpus. It includes the workers'
            imports of the encode block (no torch: the shards are written with numpy).
CPU-seconds are reported too: unlike wall time they do not grow when other jobs share the cores.
Tokens/s count text tokens (end-of-document tokens excluded) so all rows measure the same work.
Prints a table, writes JSON (default bench/out/tokenization.json).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.io import atomic_write_json, read_json  # noqa: E402
from common.progress import print_table  # noqa: E402


def _cli(work: Path, args, workers: int) -> float:
    """Run the pipeline CLI; returns the CPU seconds it used (all processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "pipeline", "run", "--run-dir", str(work), "--workers", str(workers),
           "--input", str(args.corpus / "*.jsonl.zst"), *sum((["--set", s] for s in _sets(args)), [])]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd + ["--stages", args.stages], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0 and "records a run with a different config" in proc.stderr:
        # --work is a cache kept between bench runs; one made by an older checkout or other options is rebuilt
        print(f"{work} holds a run made with another config: rebuilding it", flush=True)
        shutil.rmtree(work)   # from scratch: ingest too, whatever this call was for
        proc = subprocess.run(cmd + ["--stages", "ingest,tokenize"], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"pipeline failed:\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _sets(args) -> list[str]:
    sets = ["tokenize.allow_unfiltered=true", f"tokenize.vocab_size={args.vocab_size}"]
    if args.tokenizer:
        sets.append(f"tokenize.tokenizer='{Path(args.tokenizer).resolve()}'")
    return sets


def _forget_encode(work: Path) -> None:
    """Drop the encode and merge results so the next run redoes them (the tokenizer stays)."""
    tok = work / "tokenize"
    for d in ("_tasks/encode", "_tasks/merge", "shards", "ledger", "provenance", "merged", "tokens.zarr"):
        shutil.rmtree(tok / d, ignore_errors=True)
    for f in ("stats.json", "manifest.json"):
        (tok / f).unlink(missing_ok=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raw(tok, texts: list[str], batch_bytes: int) -> dict:
    from pipeline.tokenize_encode import batches as stage_batches
    batches = list(stage_batches(texts, batch_bytes))   # the stage's own batching
    c0, t0 = _cpu(), time.perf_counter()
    n = 0
    for b in batches:
        n += sum(len(e) for e in tok.encode_batch(b, add_special_tokens=False))
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0, "tokens": n}


def e2e_task(run, stage, step, index: int) -> dict:
    from pipeline.stage import execute_task
    c0, t0 = _cpu(), time.perf_counter()
    execute_task(run, stage, step, index)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu() - c0}


def paired(work: Path, tok, batch_bytes: int, rep: int) -> dict:
    """Every shard: raw and e2e back to back (order alternating), per-shard times kept."""
    from pipeline.context import load_run_context
    from pipeline.shards import read_shard
    from pipeline.stage import shard_path
    from pipeline.stages import get_stage
    _forget_encode(work)
    run = load_run_context(work)
    stage = get_stage("tokenize")
    step = next(s for s in stage.steps(run) if s.name == "encode")
    shards = []
    for i, shard in enumerate(step.shards):
        texts = [d.text for d in read_shard(shard_path(run, step.input_stage, shard["name"]))]
        order = ("raw", "e2e") if (i + rep) % 2 == 0 else ("e2e", "raw")
        got = {}
        for mode in order:
            got[mode] = raw(tok, texts, batch_bytes) if mode == "raw" else e2e_task(run, stage, step, i)
        shards.append({"name": shard["name"], "raw_wall_s": got["raw"]["wall_s"], "raw_cpu_s": got["raw"]["cpu_s"],
                       "e2e_wall_s": got["e2e"]["wall_s"], "e2e_cpu_s": got["e2e"]["cpu_s"],
                       "raw_tokens": got["raw"]["tokens"]})
    tot = {k: sum(s[k] for s in shards) for k in ("raw_wall_s", "raw_cpu_s", "e2e_wall_s", "e2e_cpu_s", "raw_tokens")}
    tot["ratio_wall"] = tot["raw_wall_s"] / tot["e2e_wall_s"]
    tot["ratio_cpu"] = tot["raw_cpu_s"] / tot["e2e_cpu_s"]
    tot["load_average"] = os.getloadavg()
    tot["shards"] = shards
    return tot


def best_of(pairs: list[dict]) -> dict:
    """Per shard the fastest of the reps (what an idle machine does), summed over the shards."""
    n = len(pairs[0]["shards"])
    raw_s = sum(min(p["shards"][i]["raw_wall_s"] for p in pairs) for i in range(n))
    e2e_s = sum(min(p["shards"][i]["e2e_wall_s"] for p in pairs) for i in range(n))
    return {"raw_wall_s": raw_s, "e2e_wall_s": e2e_s, "ratio_wall": raw_s / e2e_s}


def cli(work: Path, args, tok, texts, batch_bytes) -> dict:
    before = raw(tok, texts, batch_bytes)
    _forget_encode(work)
    cpu = _cli(work, args, args.workers)
    timing = read_json(work / "tokenize" / "timing.json")
    after = raw(tok, texts, batch_bytes)
    raw_wall = (before["wall_s"] + after["wall_s"]) / 2
    return {"raw_wall_s": raw_wall, "cli_encode_wall_s": timing["steps"]["encode"]["wall_s"],
            "cli_merge_wall_s": timing["steps"]["merge"]["wall_s"], "cli_stage_wall_s": timing["wall_s"],
            "cli_cpu_s_all_steps": cpu, "raw_cpu_s": (before["cpu_s"] + after["cpu_s"]) / 2,
            "ratio_wall": raw_wall / timing["steps"]["encode"]["wall_s"], "load_average": os.getloadavg()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "corpus")
    p.add_argument("--work", type=Path, default=Path("/tmp/bench-tokenize"))
    p.add_argument("--tokenizer", help="tokenizer.json or tiktoken file (default: train one)")
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--reps", type=int, default=3, help="paired raw/e2e passes over the corpus (0: skip)")
    p.add_argument("--cli-reps", type=int, default=1, help="full CLI runs, each between two raw passes")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "tokenization.json")
    args = p.parse_args(argv)
    if not args.corpus.is_dir() or not list(args.corpus.glob("*.jsonl.zst")):
        print(f"skipped: corpus not found at {args.corpus} (expected *.jsonl.zst)")
        return 0
    args.corpus = args.corpus.resolve()
    work = args.work

    # 1. ingest + tokenizer (+ a first full tokenize run), kept in --work between bench runs
    args.stages = "ingest,tokenize"
    t0 = time.perf_counter()
    _cli(work, args, args.workers)
    setup_s = time.perf_counter() - t0
    train_s = read_json(work / "tokenize" / "logs" / "tokenizer-00000.timing.json").get("wall_s")
    stats = read_json(work / "tokenize" / "stats.json")   # read now: the paired runs redo (and remove) it
    tok_info = stats["tokenizer"]
    args.stages = "tokenize"

    # 2. the same text in memory, the same tokenizer settings as the stage
    from pipeline.shards import read_shard
    from pipeline.stage import shard_path
    from pipeline.context import load_run_context
    from pipeline.tokenizer import open_tokenizer
    run = load_run_context(work)
    texts = [d.text for s in read_json(work / "ingest" / "stats.json")["shards"]
             for d in read_shard(shard_path(run, "ingest", s["name"]))]
    tok = open_tokenizer(work / "tokenize" / "tokenizer.json")
    batch_bytes = run.config.tokenize.batch_bytes

    pairs = [paired(work, tok, batch_bytes, rep) for rep in range(args.reps)]
    clis = [cli(work, args, tok, texts, batch_bytes) for _ in range(args.cli_reps)]
    text_tokens = stats["tokens"] - stats["documents"]
    assert all(p["raw_tokens"] == text_tokens for p in pairs), "raw and stage token counts differ"

    med = lambda xs: statistics.median(xs) if xs else None
    result = {"corpus": str(args.corpus), "documents": stats["documents"], "text_tokens": text_tokens,
              "text_chars": sum(map(len, texts)), "workers": args.workers, "reps": args.reps,
              "batch_bytes": batch_bytes, "tokenizer": tok_info, "cpu_count": os.cpu_count(),
              "setup_wall_s": setup_s, "tokenizer_train_wall_s": train_s,
              "paired": pairs, "cli": clis,
              "best_of_reps": best_of(pairs) if pairs else None,
              "e2e_ratio_wall_median": med([p["ratio_wall"] for p in pairs]),
              "e2e_ratio_cpu_median": med([p["ratio_cpu"] for p in pairs]),
              "cli_ratio_wall_median": med([c["ratio_wall"] for c in clis])}
    table = []
    for k, p in enumerate(pairs):
        table.append({"run": f"pair {k + 1}", "raw_s": f"{p['raw_wall_s']:.1f}", "e2e_s": f"{p['e2e_wall_s']:.1f}",
                      "raw tok/s": f"{text_tokens / p['raw_wall_s']:,.0f}",
                      "e2e tok/s": f"{text_tokens / p['e2e_wall_s']:,.0f}",
                      "e2e/raw wall": f"{p['ratio_wall']:.3f}", "e2e/raw cpu": f"{p['ratio_cpu']:.3f}",
                      "load": f"{p['load_average'][0]:.1f}"})
    b = result["best_of_reps"]
    if b:
        table.append({"run": f"best of {args.reps}", "raw_s": f"{b['raw_wall_s']:.1f}", "e2e_s": f"{b['e2e_wall_s']:.1f}",
                      "raw tok/s": f"{text_tokens / b['raw_wall_s']:,.0f}",
                      "e2e tok/s": f"{text_tokens / b['e2e_wall_s']:,.0f}",
                      "e2e/raw wall": f"{b['ratio_wall']:.3f}", "e2e/raw cpu": "", "load": ""})
    for k, c in enumerate(clis):
        table.append({"run": f"cli {k + 1} (w={args.workers})", "raw_s": f"{c['raw_wall_s']:.1f}",
                      "e2e_s": f"{c['cli_encode_wall_s']:.1f}", "raw tok/s": f"{text_tokens / c['raw_wall_s']:,.0f}",
                      "e2e tok/s": f"{text_tokens / c['cli_encode_wall_s']:,.0f}",
                      "e2e/raw wall": f"{c['ratio_wall']:.3f}", "e2e/raw cpu": "",
                      "load": f"{c['load_average'][0]:.1f}"})
    print_table(table, title=f"tokenize: {stats['documents']:,} docs, {text_tokens:,} text tokens, "
                             f"vocab {tok_info['vocab_size']}, {os.cpu_count()} cpus")
    if b:
        print(f"e2e / raw: best of {args.reps} per shard {b['ratio_wall']:.3f}; median of the paired reps: wall "
              f"{result['e2e_ratio_wall_median']:.3f}, cpu {result['e2e_ratio_cpu_median']:.3f}")
    print(f"tokenizer training: {result['tokenizer_train_wall_s']:.1f} s"
          + (f"; merge step (megatron + zarr): {clis[0]['cli_merge_wall_s']:.1f} s" if clis else ""))
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
