"""`make bench`: run every benchmark in bench/, then write one combined bench/results.json and a table.

Each bench/<name>.py prints its own table and writes bench/out/<name>.json; this collects them with
the machine they ran on. A benchmark that fails is reported as failed, and the rest still run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHES = ["dedupe", "cbrn", "tokenization", "model", "train"]      # the order a user reads them
NOT_BENCHES = {"run_all", "peers", "dedupe_eval", "datatrove_minhash", "timing"}


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def main(argv=None) -> int:
    names = [n for n in BENCHES if (REPO / "bench" / f"{n}.py").is_file()]
    names += sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem not in NOT_BENCHES and p.stem not in names)
    ap = argparse.ArgumentParser(description="Run every benchmark in bench/ (or the ones named), then write "
                                             "bench/results.json and a table.")
    ap.add_argument("only", nargs="*", metavar="NAME", help=f"run only these ({', '.join(names)})")
    only = set(ap.parse_args(argv).only)
    if only - set(names):
        ap.error(f"unknown benchmark(s): {', '.join(sorted(only - set(names)))}; known: {', '.join(names)}")
    results, rows = {"machine": machine(), "benches": {}}, []
    for name in names:
        if only and name not in only:
            continue
        out = REPO / "bench" / "out" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"\n=== bench/{name}.py", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), "--out", str(out)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - t0
        ok = proc.returncode == 0 and out.is_file()
        results["benches"][name] = {"ok": ok, "wall_s": round(wall, 1),
                                    "result": json.loads(out.read_text()) if ok else None}
        rows.append({"bench": name, "status": "ok" if ok else f"FAILED ({proc.returncode})", "wall_s": f"{wall:.0f}"})
    (REPO / "bench" / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    sys.path.insert(0, str(REPO))
    from common.progress import print_table
    print()
    print_table(rows, title=f"benchmarks on {results['machine'].get('cpu', platform.machine())}, "
                            f"{results['machine']['cpus']} CPUs -> bench/results.json")
    return 0 if all(r["ok"] for r in results["benches"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
