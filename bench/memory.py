"""Measured vs planned activation memory of one training step on CPU (the check behind `pretrain.plan`).

    python bench/memory.py [--presets tiny,small] [--batch 8] [--seq 256] [--recompute none,full,selective]

Each case runs in a fresh process (one rank, float32, the trainer's own model, recompute wrapper and
forward_backward): one warm-up step allocates the AdamW state, then the peak resident memory (VmHWM,
reset through /proc/self/clear_refs) is read over one more forward+backward. Measured activations =
that peak minus the resident memory before it, minus the gradients the backward allocates (known
exactly). glibc is told to return freed memory at once (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_)
so the resident size follows the allocations. Also reported: the bytes autograd saved for the backward
(saved-tensor hooks, each storage once). Writes bench/out/memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common.memory import reset_peak, status_bytes  # noqa: E402


def _status(key: str) -> int:
    value = status_bytes(key)
    if value is None:
        raise KeyError(key)
    return value


def measure(preset: str, batch: int, seq: int, recompute: str, vocab: int | None) -> dict:
    """In this process: the measured growth of one forward+backward (see the module docstring)."""
    import gc

    import torch

    import pretrain  # noqa: F401
    from model import Transformer, get_preset
    from pretrain.config import OptimConfig
    from pretrain.data import MicroBatch
    from pretrain.distributed import init_distributed, shutdown
    from pretrain.mesh import init_mesh
    from pretrain.optim import build_optimizer, set_lr
    from pretrain.parallelize import parallelize
    from pretrain.step import forward_backward

    torch.set_num_threads(1)
    init_distributed("gloo")
    try:
        args = get_preset(preset, **({"vocab_size": vocab} if vocab else {}))
        torch.manual_seed(0)
        model = Transformer(args)
        model.init_weights()
        plan = parallelize(model, init_mesh(1, 1), recompute=recompute)
        opt = build_optimizer(plan.params, OptimConfig())
        set_lr(opt, 1e-4)
        tokens = torch.randint(0, args.vocab_size, (batch, seq + 1), generator=torch.Generator().manual_seed(0))
        mb = MicroBatch(tokens=tokens[:, :-1], labels=tokens[:, 1:], loss_mask=torch.ones(batch, seq))

        def fwd_bwd():
            forward_backward(model, [mb], aux_coef=0.01, aux_scope="sequence", global_sequences=batch,
                             dp_group=plan.mesh.dp_group, autocast_dtype=None)

        fwd_bwd()
        opt.step()
        opt.zero_grad(set_to_none=True)
        gc.collect()
        saved: dict[int, int] = {}

        def pack(t):
            s = t.untyped_storage()
            saved[s.data_ptr()] = s.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fwd_bwd()
        opt.zero_grad(set_to_none=True)
        gc.collect()
        before = _status("VmRSS")
        reset_peak()
        fwd_bwd()
        peak = _status("VmHWM")
        grads = sum(p.numel() * 4 for p in plan.params.values())
        return {"preset": preset, "batch": batch, "seq": seq, "recompute": recompute, "vocab": args.vocab_size,
                "rss_growth": peak - before, "grads": grads, "measured_activations": peak - before - grads,
                "autograd_saved": sum(saved.values())}
    finally:
        shutdown()


def run_case(preset: str, batch: int, seq: int, recompute: str, vocab: int | None) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, __file__, "--one", json.dumps([preset, batch, seq, recompute, vocab])]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def planned(case: dict) -> int:
    from model import get_preset
    from pretrain.plan import Layout, activation_bytes
    args = get_preset(case["preset"], vocab_size=case["vocab"])
    layout = Layout(gpus=1, tp=1, ep=1, fsdp=False, seq=case["seq"], micro_batch=case["batch"],
                    recompute=case["recompute"], device="cpu")
    return activation_bytes(args, layout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default="tiny,small")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--recompute", default="none,full,selective")
    p.add_argument("--vocab", type=int, default=None)
    p.add_argument("--out", default=str(REPO / "bench/out/memory.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(measure(*json.loads(a.one))))
        return 0
    from common.progress import print_table
    rows = []
    for preset in a.presets.split(","):
        for mode in a.recompute.split(","):
            case = run_case(preset, a.batch, a.seq, mode, a.vocab)
            case["planned_activations"] = planned(case)
            case["planned_over_measured"] = round(case["planned_activations"] / case["measured_activations"], 3)
            rows.append(case)
    print_table([{"preset": r["preset"], "b x s": f"{r['batch']}x{r['seq']}", "recompute": r["recompute"],
                  "measured MB": f"{r['measured_activations'] / 2**20:.1f}",
                  "autograd saved MB": f"{r['autograd_saved'] / 2**20:.1f}",
                  "planned MB": f"{r['planned_activations'] / 2**20:.1f}",
                  "planned/measured": f"{r['planned_over_measured']:.2f}"} for r in rows],
                title="activation memory of one step on CPU (float32, 1 rank)")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
