"""`python -m slurm submit|status ...`: the SLURM front door. The `slurm` package is a library the
pipeline calls (it never imports the pipeline), so these commands hand over to `python -m pipeline
submit|status` in a new process, with the same arguments:

    python -m slurm submit --preset tiny --run-dir runs/x --dry-run   # write every script, submit nothing
    python -m slurm submit --config run.toml --run-dir runs/x          # the chain of dependent jobs
    python -m slurm status runs/x                                      # stages from the markers, job states
"""
from __future__ import annotations

import os
import sys

COMMANDS = ("submit", "status")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    os.execv(sys.executable, [sys.executable, "-m", "pipeline", *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
