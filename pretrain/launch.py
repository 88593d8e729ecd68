"""`python -m pretrain.launch [--nproc-per-node N] [pretrain.train arguments ...]`

Starts the trainer with the process count the config asks for (`train.parallel.nproc`; 0 = auto, see
pretrain/config.py):
one process directly, several through torchrun. Forwards SIGTERM / SIGUSR1 / SIGINT to it (SIGUSR1 as
SIGTERM to torchrun, which would die on SIGUSR1 and orphan its workers), and returns
the trainer's exit code even through torchrun (which reports any worker failure as 1): when the
trainer recorded `train/status.json` state "preempted" during this launch, the result is 75, so a
SLURM job script can requeue on it. The pipeline's train stage launches through `launch()`.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common.io import read_json

EXIT_PREEMPTED = 75
FORWARDED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def command(train_args: list[str], nproc: int, nodes: dict | None = None) -> list[str]:
    """The trainer command: plain for one process, torchrun otherwise. `nodes` = {"nnodes",
    "node_rank", "master_addr", "master_port"} for a multi-node job (one launch per node)."""
    if nproc <= 1 and not nodes:
        return [sys.executable, "-m", "pretrain.train", *train_args]
    from pretrain.distributed import free_port
    nodes = nodes or {"nnodes": 1, "node_rank": 0, "master_addr": "127.0.0.1", "master_port": free_port()}
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nodes["nnodes"]),
            "--node-rank", str(nodes["node_rank"]), "--nproc-per-node", str(max(nproc, 1)),
            "--master-addr", str(nodes["master_addr"]), "--master-port", str(nodes["master_port"]),
            "-m", "pretrain.train", *train_args]


def launch(train_args: list[str], *, nproc: int, run_dir: str | Path, env: dict | None = None,
           nodes: dict | None = None) -> int:
    """Run the trainer to completion; returns its exit code (75 = checkpointed on a signal)."""
    started = time.time()
    cmd = command(train_args, nproc, nodes)
    torchrun = "torch.distributed.run" in cmd  # one process of a multi-node job runs under torchrun too
    # Under srun, slurmstepd signals every process of the step, torchrun too: torchrun would die of USR1
    # and orphan its workers, so it starts with USR1 ignored (the trainer installs its own handler).
    ignore_usr1 = (lambda: signal.signal(signal.SIGUSR1, signal.SIG_IGN)) if torchrun else None
    proc = subprocess.Popen(cmd, env=env, preexec_fn=ignore_usr1)

    def forward(signum, _frame):
        # torchrun traps TERM/INT/HUP/QUIT (and passes TERM on to its workers) but dies on USR1, which
        # would orphan the workers: it gets TERM instead; the trainer treats both alike.
        proc.send_signal(signal.SIGTERM if signum == signal.SIGUSR1 and torchrun else signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        rc = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    status_path = Path(run_dir) / "train" / "status.json"
    if rc != 0 and status_path.is_file() and status_path.stat().st_mtime >= started - 1:
        status = read_json(status_path)
        if status.get("state") == "preempted":
            return EXIT_PREEMPTED
        if status.get("state") == "failed" and status.get("exit_code") is not None and rc == 1:
            return int(status["exit_code"])  # e.g. 2 for a config error, hidden by torchrun
    return rc


def main(argv=None) -> int:
    from common.config import ConfigError
    from pretrain.train import EXIT_CONFIG, parse_args, resolve_config

    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(prog="python -m pretrain.launch", add_help=False,
                                  description="Start the trainer's processes (torchrun), forward signals, keep exit "
                                              "code 75; every other option goes to the trainer (below).")
    pre.add_argument("--nproc-per-node", "--nproc", type=int, default=0,
                     help="processes per node (default: train.parallel.nproc, or every GPU / 2 on CPU)")
    # multi-node (one launch per node, e.g. `srun --ntasks-per-node=1`); the node rank defaults to
    # $SLURM_NODEID so a job script need not evaluate it per task
    pre.add_argument("--nnodes", type=int, default=1, help="nodes (one launch per node)")
    pre.add_argument("--node-rank", type=int, default=None,
                     help="this node's rank (default $SLURM_NODEID)")
    pre.add_argument("--master-addr", default=None, help="rendezvous host (multi-node)")
    pre.add_argument("--master-port", type=int, default=None, help="rendezvous port (multi-node)")
    if "-h" in argv or "--help" in argv:
        print(pre.format_help().replace("usage:", "launcher usage:", 1))
        print("options passed to the trainer:\n")
        parse_args(["--help"])  # prints the trainer's help and exits 0
    known, train_args = pre.parse_known_args(argv)
    try:
        cfg, run_dir = resolve_config(parse_args(train_args))
    except ConfigError as e:
        print(f"pretrain.launch: {e}", file=sys.stderr)
        return EXIT_CONFIG
    env = dict(os.environ)
    nodes = None
    if known.nnodes > 1 or known.master_addr:
        nodes = {"nnodes": known.nnodes,
                 "node_rank": known.node_rank if known.node_rank is not None else int(os.environ.get("SLURM_NODEID", 0)),
                 "master_addr": known.master_addr or "127.0.0.1", "master_port": known.master_port or 29500}
    return launch(train_args, nproc=known.nproc_per_node or cfg.processes(), run_dir=run_dir, env=env, nodes=nodes)


if __name__ == "__main__":
    sys.exit(main())
