"""The fixed cost of a pipeline run: `python -m pipeline run` on a tiny corpus (100 documents by default),
so what is measured is start-up, imports, worker spawn and per-stage bookkeeping, not the data.

    python bench/fixed_cost.py [--docs 100] [--workers 2] [--stages ingest,dedupe,cbrn] [--repeats 3]

Prints a table (wall time of the whole command, each stage's own wall time from its timing.json, the
rest = interpreter start, imports, config and the run summary), the import time of the CLI module, and
which heavy libraries the data stages loaded in-process; writes bench/out/fixed_cost.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.io import atomic_write_json  # noqa: E402
from common.progress import print_table  # noqa: E402

HEAVY = ("torch", "megatron", "matplotlib", "transformers", "datasets", "pandas", "fasttext", "tokenizers")


def write_docs(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"d{i:05d}", "text": f"Document {i} is about gardens, rivers and the weather "
                                                              f"in spring; it has nothing else to say. " * 4}) + "\n")


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "0"}


def one_run(tmp: Path, docs: Path, workers: int, stages: str, i: int) -> dict:
    run = tmp / f"run{i}"
    cmd = [sys.executable, "-m", "pipeline", "run", "--run-dir", str(run), "--workers", str(workers),
           "--stages", stages, "--input", str(docs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    per_stage = {}
    for s in stages.split(","):
        t = json.loads((run / s / "timing.json").read_text())
        per_stage[s] = float(t.get("wall_s", 0.0))
    return {"wall_s": wall, "stages": per_stage}


def heavy_imports(tmp: Path, docs: Path, stages: str) -> list[str]:
    """Heavy libraries loaded when the data stages run in-process (one worker)."""
    code = ("import sys\nfrom tests.pipeline.helpers import run_stages\n"
            f"run_stages(sys.argv[1], [sys.argv[2]], workers=1, stages=tuple({stages.split(',')!r}))\n"
            f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp / "inproc"), str(docs)], cwd=REPO, env=env(),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("HEAVY", 1)[1].strip().replace("'", '"'))


def import_time(module: str) -> float:
    code = f"import time; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env(), capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stages", default="ingest,dedupe,cbrn")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "fixed_cost.json"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        docs = tmp / "docs.jsonl"
        write_docs(docs, args.docs)
        runs = [one_run(tmp, docs, args.workers, args.stages, i) for i in range(args.repeats)]
        heavy = heavy_imports(tmp, docs, args.stages)
    wall = statistics.median(r["wall_s"] for r in runs)
    stage_s = {s: statistics.median(r["stages"][s] for r in runs) for s in args.stages.split(",")}
    rows = [{"part": "whole command", "seconds": f"{wall:.2f}"}]
    rows += [{"part": f"stage {s}", "seconds": f"{v:.2f}"} for s, v in stage_s.items()]
    rows.append({"part": "the rest (start, imports, config, summary)", "seconds": f"{wall - sum(stage_s.values()):.2f}"})
    imp = {m: import_time(m) for m in ("pipeline.__main__", "pyarrow.parquet", "pandas")}
    rows += [{"part": f"import {m}", "seconds": f"{v:.2f}"} for m, v in imp.items()]
    print_table(rows, title=f"python -m pipeline run on {args.docs} documents, {args.workers} workers, "
                            f"median of {args.repeats}")
    print(f"heavy libraries the data stages load in-process: {', '.join(heavy) or 'none'}")
    atomic_write_json(args.out, {"docs": args.docs, "workers": args.workers, "stages": args.stages,
                                 "repeats": args.repeats, "wall_s": wall, "stage_wall_s": stage_s,
                                 "import_s": imp, "heavy_imports": heavy, "runs": runs})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
