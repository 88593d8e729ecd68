"""Run under torchrun by test_fsdp.py: start a Trainer on RUN_DIR (which loads its newest checkpoint under
this launch's layout) and save what it loaded into OUT_ROOT/step-<N>/, untouched by any training step.

    python -m tests.pretrain.reshard_probe OUT_ROOT --config F --run-dir R [key=value ...]
"""
from __future__ import annotations

import sys

from pretrain import checkpoint as ckpt
from pretrain.distributed import init_distributed, shutdown
from pretrain.train import StopSignal, Trainer, parse_args, resolve_config


def main(argv: list[str]) -> int:
    out_root, rest = argv[0], argv[1:]
    cfg, run_dir = resolve_config(parse_args(rest))
    rt = init_distributed(cfg.parallel.backend)
    try:
        trainer = Trainer(cfg, run_dir, rt, max_steps=0, stop=StopSignal())
        ckpt.save(out_root, trainer.step, plan=trainer.plan, optimizer=trainer.optimizer,
                  meta={"optimizer_step": trainer.step, "probe": True}, keep_last=1)
    finally:
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
