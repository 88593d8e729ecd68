"""Peer side of the dedupe benchmark: datatrove's own MinHash near-dedupe pipeline.

Runs INSIDE the datatrove venv (stdlib + datatrove and its dependencies only; never
imported by the project).  Make the venv and run it with:

    PY=$(python3 bench/peers.py datatrove)
    $PY bench/datatrove_minhash.py --input ../shared/data/corpus_dupes --work /tmp/dt-work \\
        --out bench/out/datatrove.json --bands 14 --rows 8 --ngram 5 --tasks 2 --workers 2

The four datatrove stages run one after another, each as its own LocalPipelineExecutor,
and each is timed by wall clock (process start-up included):

  signatures  JsonlReader -> MinhashDedupSignature            tasks=T, workers=W
  buckets     MinhashDedupBuckets                              tasks=bands*ceil(T/bands), workers=W
              (datatrove asserts tasks % num_buckets == 0, so T=2 cannot be used here)
  cluster     MinhashDedupCluster                              tasks=1 (datatrove asserts it)
  filter      JsonlReader -> MinhashDedupFilter(exclusion_writer=JsonlWriter) -> JsonlWriter (kept docs)
              tasks=T, workers=W (must equal the signature stage: removal lists are per rank)

Everything else is datatrove's default (MinhashConfig's seed, HashConfig, TextNormConfig,
language "en" -> its default word tokenizer); the values used are written to the JSON.
``docs_per_s`` of every stage is (documents read) / (stage wall time).

Input: a directory (all *.jsonl, *.jsonl.gz, *.jsonl.zst in it) or a glob.  datatrove's
JsonlReader reads .zst through fsspec, which needs ``zstandard`` (or ``backports.zstd``)
in the venv; without it the files are first decompressed with the ``zstd`` command to
.jsonl.gz under WORK/input_gz, timed separately ("input_prep") and not part of any stage.

The JSON also holds, overall and per stage, peak memory (summed RSS and PSS of this
process and all its descendants, sampled every 0.2 s from /proc) and per stage the CPU
seconds of those processes and the 1-min load average (other work on the machine
shows up as a load well above `workers`).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

WORK_SUBDIRS = ("signatures", "buckets", "remove_ids", "removed", "kept", "logs", "input_gz")
INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")


# ----------------------------------------------------------------------------- memory sampling
class TreeSampler:
    """Samples this process and all its descendants from /proc every `interval` s.

    Tracks the peak of the summed RSS and PSS (bytes), and CPU time (user+sys) of every
    process seen, so a stage's CPU seconds include its short-lived worker processes
    (forkserver workers are grandchildren, which getrusage(RUSAGE_CHILDREN) misses).
    """

    def __init__(self, interval: float = 0.2, root: int | None = None):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.hz = os.sysconf("SC_CLK_TCK")
        self.root = os.getpid() if root is None else root   # a child: the tree of the measured command only
        self.peak_rss = self.peak_pss = 0
        self.peak_process_rss = 0   # the largest RSS any one process of the tree reached
        self._stage_rss = self._stage_pss = 0
        self._cpu: dict[tuple[int, int], int] = {}  # (pid, starttime) -> utime+stime ticks, last seen
        self._cpu_base: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _tree(self) -> list[tuple[int, int, int]]:
        """(pid, starttime, cpu ticks) of the root and all its descendants."""
        children: dict[int, list[int]] = {}
        info: dict[int, tuple[int, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # fields after the parenthesised command name: state ppid ... utime(11) stime(12) ... starttime(19)
            fields = stat[stat.rindex(b")") + 2 :].split()
            pid = int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            info[pid] = (int(fields[19]), int(fields[11]) + int(fields[12]))
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            if pid in info:
                out.append((pid, *info[pid]))
            todo.extend(children.get(pid, ()))
        return out

    def sample(self) -> None:
        rss = pss = one = 0
        procs = self._tree()
        for pid, _, _ in procs:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    r = int(f.read().split()[1]) * self.page
                    rss += r
                    one = max(one, r)
            except OSError:
                continue
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                            break
            except OSError:
                pass
        with self._lock:
            for pid, start, ticks in procs:
                self._cpu[(pid, start)] = ticks
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_process_rss = max(self.peak_process_rss, one)
            self._stage_rss, self._stage_pss = max(self._stage_rss, rss), max(self._stage_pss, pss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> "TreeSampler":
        self.sample()
        self._thread.start()
        return self

    def stage_reset(self) -> None:
        self.sample()
        with self._lock:
            self._stage_rss = self._stage_pss = 0
            self._cpu_base = dict(self._cpu)

    def stage_end(self) -> tuple[int, int, float]:
        """(peak RSS, peak PSS, CPU seconds) since the last stage_reset()."""
        self.sample()
        with self._lock:
            ticks = sum(v - self._cpu_base.get(k, 0) for k, v in self._cpu.items())
            return self._stage_rss, self._stage_pss, ticks / self.hz

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _mb(n: int) -> float:
    return round(n / 2**20, 1)


# ----------------------------------------------------------------------------- input handling
def resolve_inputs(spec: str) -> list[Path]:
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(INPUT_SUFFIXES))
    else:
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if os.path.isfile(f))
    if not files:
        raise SystemExit(f"no input files for {spec!r} (a directory with {'/'.join(INPUT_SUFFIXES)} files, or a glob)")
    return [f.resolve() for f in files]


def fsspec_reads_zstd() -> bool:
    try:
        import fsspec.compression  # noqa: F401  (registers the codecs that are importable)
        import fsspec.utils
    except ImportError:
        return False
    return fsspec.utils.compressions.get("zst") == "zstd"


def decompress_zst_to_gz(files: list[Path], dest: Path) -> list[Path]:
    """Fallback when fsspec cannot read .zst: `zstd -dc` each file into a .jsonl.gz."""
    zstd = shutil.which("zstd")
    if zstd is None:
        raise SystemExit("input is .zst, fsspec has no zstd codec (pip install zstandard) and no `zstd` command")
    dest.mkdir(parents=True)
    out = []
    for f in files:
        if not f.name.endswith(".zst"):
            out.append(f)
            continue
        target = dest / (f.name[: -len(".zst")] + ".gz")
        with subprocess.Popen([zstd, "-dc", str(f)], stdout=subprocess.PIPE) as proc, gzip.open(
            target, "wb", compresslevel=1
        ) as g:
            shutil.copyfileobj(proc.stdout, g, 1 << 20)
        if proc.returncode:
            raise SystemExit(f"zstd -dc {f} failed (exit {proc.returncode})")
        out.append(target)
    return out


# ----------------------------------------------------------------------------- stats
def read_stage_stats(logging_dir: Path) -> list[dict]:
    """datatrove's merged stats.json of one executor (list of per-step stat dicts)."""
    f = logging_dir / "stats.json"
    if not f.exists():
        return []
    return json.loads(f.read_text())


def _stat_total(step: dict, key: str) -> int | None:
    v = step.get("stats", {}).get(key)
    if isinstance(v, dict):
        return int(v.get("total", v.get("n", 0)))
    if isinstance(v, (int, float)):
        return int(v)
    return None


# ----------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="directory of .jsonl[.gz|.zst] files, or a glob")
    ap.add_argument("--work", required=True, help="work directory (its datatrove sub-folders are wiped first)")
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--bands", type=int, required=True, help="LSH bands = MinhashConfig.num_buckets")
    ap.add_argument("--rows", type=int, required=True, help="rows per band = MinhashConfig.hashes_per_bucket")
    ap.add_argument("--ngram", type=int, required=True, help="word n-gram size = MinhashConfig.n_grams")
    ap.add_argument("--tasks", type=int, required=True, help="tasks of the signature and filter stages")
    ap.add_argument("--workers", type=int, required=True, help="concurrent worker processes per stage")
    ap.add_argument(
        "--limit", type=int, default=-1, help="read about this many docs in total (datatrove's reader limit is "
        "per task, so each task gets ceil(N/tasks)); the JSON holds the number actually read"
    )
    ap.add_argument("--no-kept-output", action="store_true", help="do not write the kept documents in the filter stage")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_script = time.perf_counter()
    sampler = TreeSampler().start()

    from importlib.metadata import version as pkg_version

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for sub in WORK_SUBDIRS:  # only what this script creates; stale outputs would be "completed" tasks
        shutil.rmtree(work / sub, ignore_errors=True)

    # -- input files
    files = resolve_inputs(args.input)
    prep = None
    if any(f.name.endswith(".zst") for f in files) and not fsspec_reads_zstd():
        t0 = time.perf_counter()
        files = decompress_zst_to_gz(files, work / "input_gz")
        prep = {"what": "zstd -dc -> .jsonl.gz (fsspec had no zstd codec)", "wall_s": round(time.perf_counter() - t0, 3)}
        print(f"[datatrove_minhash] decompressed .zst input to {work / 'input_gz'} in {prep['wall_s']} s", file=sys.stderr)
    data_dir = Path(os.path.commonpath([str(f.parent) for f in files]))
    paths_file = work / "input_paths.txt"
    paths_file.write_text("".join(f"{f.relative_to(data_dir)}\n" for f in files))

    per_task_limit = -1 if args.limit is None or args.limit < 0 else math.ceil(args.limit / args.tasks)

    def reader():
        return JsonlReader(str(data_dir), paths_file=str(paths_file), limit=per_task_limit)  # id_key="id" default

    config = MinhashConfig(n_grams=args.ngram, num_buckets=args.bands, hashes_per_bucket=args.rows)
    bucket_tasks = args.bands * max(1, math.ceil(args.tasks / args.bands))
    sig_dir, bkt_dir, rm_dir = work / "signatures", work / "buckets", work / "remove_ids"
    logs = work / "logs"

    sig_step = MinhashDedupSignature(output_folder=str(sig_dir), config=config)  # language="en" default
    filter_steps = [
        reader(),
        MinhashDedupFilter(input_folder=str(rm_dir), exclusion_writer=JsonlWriter(str(work / "removed"))),
    ]
    if not args.no_kept_output:
        filter_steps.append(JsonlWriter(str(work / "kept")))
    stages = [
        ("signatures", [reader(), sig_step], args.tasks, args.workers),
        ("buckets", [MinhashDedupBuckets(input_folder=str(sig_dir), output_folder=str(bkt_dir), config=config)],
         bucket_tasks, args.workers),
        ("cluster", [MinhashDedupCluster(input_folder=str(bkt_dir), output_folder=str(rm_dir), config=config)], 1, 1),
        ("filter", filter_steps, args.tasks, args.workers),
    ]

    results: dict[str, dict] = {}
    for name, pipeline, tasks, workers in stages:
        executor = LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=str(logs / name), skip_completed=False
        )
        sampler.stage_reset()
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        executor.run()
        wall = time.perf_counter() - t0
        rss, pss, cpu_s = sampler.stage_end()
        incomplete = executor.get_incomplete_ranks(skip_completed=True)
        if incomplete:
            raise SystemExit(f"datatrove stage {name}: tasks {incomplete} did not complete (see {logs / name})")
        results[name] = {
            "wall_s": round(wall, 3), "tasks": tasks, "workers": workers,
            # user+sys of all processes of the stage (sampled; a worker's last <0.2 s may be missed)
            "cpu_s": round(cpu_s, 1),
            "peak_tree_rss_mb": _mb(rss), "peak_tree_pss_mb": _mb(pss),
            # 1-min load average before/after: well above `workers` means other work shared the cores
            "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        print(f"[datatrove_minhash] stage {name}: {wall:.1f} s", file=sys.stderr, flush=True)

    # -- counts from datatrove's own stats
    sig_stats = read_stage_stats(logs / "signatures")
    n_docs = next((_stat_total(s, "total") for s in sig_stats if "MinHash stage 1" in s.get("name", "")), None)
    filt_stats = read_stage_stats(logs / "filter")
    filt = next((s for s in filt_stats if "MinHash stage 4" in s.get("name", "")), {})

    # -- removed ids: the `id` field of the documents the filter's exclusion_writer wrote
    removed_ids: list[str] = []
    for f in sorted((work / "removed").glob("*.jsonl*")):
        with gzip.open(f, "rt", encoding="utf-8") if f.name.endswith(".gz") else open(f, encoding="utf-8") as fh:
            removed_ids.extend(json.loads(line)["id"] for line in fh if line.strip())
    if filt and _stat_total(filt, "dropped") not in (None, len(removed_ids)):
        raise SystemExit(f"filter dropped {_stat_total(filt, 'dropped')} docs but {len(removed_ids)} ids were written")
    if n_docs is None:
        n_docs = _stat_total(filt, "total")

    total_wall = sum(r["wall_s"] for r in results.values())
    for r in results.values():
        r["docs_per_s"] = round(n_docs / r["wall_s"], 1) if n_docs and r["wall_s"] > 0 else None
    sampler.stop()
    self_ru, child_ru = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)

    out = {
        "tool": "datatrove",
        "version": pkg_version("datatrove"),
        "params": {
            "bands": args.bands, "rows": args.rows, "ngram": args.ngram, "tasks": args.tasks,
            "workers": args.workers, "limit": args.limit, "per_task_limit": per_task_limit,
            "bucket_tasks": bucket_tasks, "kept_output": not args.no_kept_output,
            "input": args.input, "input_files": [str(f) for f in files],
            "datatrove_defaults": {
                "seed": config.seed,
                "hash_config": {"hash_fc": config.hash_config.hash_fc, "precision": config.hash_config.precision},
                "norm_config": {k: getattr(config.norm_config, k) for k in vars(config.norm_config)},
                "language": sig_step.language,
                "word_tokenizer": type(sig_step.word_tokenizer).__name__,
                "shingle": "word n-grams of simplify_text(text), joined by ' ', hashed",
                "reader": "JsonlReader(compression='infer', id_key='id', text_key='text')",
                "executor": "LocalPipelineExecutor(start_method='forkserver')",
            },
        },
        "input_prep": prep,
        "n_docs": n_docs,
        "n_removed": len(removed_ids),
        "stages": results,
        "total_wall_s": round(total_wall, 3),
        "total_cpu_s": round(sum(r["cpu_s"] for r in results.values()), 1),
        "docs_per_s": round(n_docs / total_wall, 1) if n_docs and total_wall > 0 else None,
        "script_wall_s": round(time.perf_counter() - t_script, 3),
        "memory": {
            "peak_tree_rss_mb": _mb(sampler.peak_rss),
            "peak_tree_pss_mb": _mb(sampler.peak_pss),
            "note": "summed over this process and all descendants, sampled every 0.2 s; RSS double-counts "
            "pages shared between forked workers, PSS does not",
            "ru_maxrss_self_mb": round(self_ru.ru_maxrss / 1024, 1),
            "ru_maxrss_children_mb": round(child_ru.ru_maxrss / 1024, 1),
        },
        "host": {
            "python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "datatrove_stats": {"signatures": sig_stats, "filter": filt_stats},
        "removed_ids": removed_ids,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(out_path)
    print(
        f"[datatrove_minhash] {n_docs} docs, removed {len(removed_ids)}, total {total_wall:.1f} s "
        f"({out['docs_per_s']} docs/s) -> {out_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
