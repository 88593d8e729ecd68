"""The pipeline's `train` stage: `run_train_stage(run)` trains with `run.config.train` into RUN_DIR/train/.

It launches the trainer as a subprocess (torchrun when the config asks for several processes), so the
trainer owns its process group and signal handling; a run directory with checkpoints resumes. Returns
RUN_DIR/train/summary.json (final loss, steps, tokens, checkpoint, HF export, plots).
"""
from __future__ import annotations

import os

from common.config import to_dict
from common.io import atomic_write_json, read_json
from pretrain.launch import EXIT_PREEMPTED, launch


class TrainPreempted(RuntimeError):
    """The trainer checkpointed on SIGTERM/SIGUSR1 and exited; re-running the stage resumes it."""
    exit_code = EXIT_PREEMPTED


def run_train_stage(run) -> dict:
    cfg = run.config.train
    train_dir = run.stage_dir("train")
    train_dir.mkdir(parents=True, exist_ok=True)
    # The trainer records what it actually ran in train/config.json (and refuses a changed config on
    # resume); this file is only what the pipeline asked for.
    requested = atomic_write_json(train_dir / "requested_config.json", {"train": to_dict(cfg)})
    env = dict(os.environ)
    rc = launch(["--config", str(requested), "--run-dir", str(run.run_dir)], nproc=cfg.processes(),
                run_dir=run.run_dir, env=env)
    if rc == EXIT_PREEMPTED:
        raise TrainPreempted(f"train: checkpointed on a signal and exited ({EXIT_PREEMPTED}); run the stage again "
                             f"to resume from {train_dir / 'checkpoints'}")
    if rc != 0:
        raise RuntimeError(f"train: the trainer exited with {rc} (see its output and {train_dir / 'status.json'})")
    return read_json(train_dir / "summary.json")
