"""`python -m filters.audit RUN_DIR [--labeled FILE | --no-labeled] [--sample N]`.

Exit codes: 0 report written and every check passes, 1 report written but a check failed (it says
which, first thing in the report), 2 not a run directory or bad arguments.
"""
from __future__ import annotations

import argparse
import sys

from common.config import ConfigError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m filters.audit", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--labeled", default=None, help="labeled JSONL to evaluate the run's filter on "
                    "(default: cbrn.audit_labeled of the run's config)")
    ap.add_argument("--no-labeled", action="store_true", help="no labeled-set evaluation, even when an earlier "
                    "audit of this run made one (by default it is made again with the same file)")
    ap.add_argument("--sample", type=int, default=None, help="removed documents / hard negatives listed "
                    "(default: cbrn.audit_sample)")
    args = ap.parse_args(argv)
    from filters.audit import build_report
    from pipeline.context import load_run_context
    try:
        cfg = load_run_context(args.run_dir).config.cbrn
    except (FileNotFoundError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.sample is not None and args.sample < 0:
        print("error: --sample must be >= 0", file=sys.stderr)
        return 2
    labeled = "" if args.no_labeled else cfg.audit_labeled if args.labeled is None else args.labeled
    audit = build_report(args.run_dir, cfg, labeled=labeled, keep_earlier=not args.no_labeled,
                         sample=cfg.audit_sample if args.sample is None else args.sample)
    print(f"{args.run_dir}/audit/report.html")
    for p in audit["problems"]:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 0 if audit["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
