"""`python -m pretrain.export RUN_DIR [--step N] [--out DIR] [--dtype bfloat16]`: a Hugging Face checkpoint
(config.json + model.safetensors; `model.hf.load` and `transformers.GptOssForCausalLM` open it) from a
trainer checkpoint, assembled from the per-rank files alone (no GPUs, no process group)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pretrain.checkpoint import checkpoint_root, export_hf_from, list_checkpoints


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pretrain.export", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?", default="runs/demo")
    p.add_argument("--step", type=int, help="checkpoint step (default: the newest)")
    p.add_argument("--out", help="output directory (default: RUN_DIR/train/hf-step-<N>)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), help="default: the checkpoint's (float32)")
    a = p.parse_args(argv)
    found = dict(list_checkpoints(checkpoint_root(Path(a.run_dir) / "train")))
    if not found:
        print(f"pretrain.export: no checkpoints under {checkpoint_root(Path(a.run_dir) / 'train')}", file=sys.stderr)
        return 2
    step = a.step if a.step is not None else max(found)
    if step not in found:
        print(f"pretrain.export: no checkpoint step-{step}; have {sorted(found)}", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else Path(a.run_dir) / "train" / f"hf-step-{step}"
    export_hf_from(found[step], out, dtype=getattr(torch, a.dtype) if a.dtype else None)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
