"""One full training step, tokens/s and MFU: this repo's trainer step vs `transformers.GptOssForCausalLM`'s,
same config, same initial weights, same batch, in one process side by side.

    python bench/train.py                          # small preset, batch 8 x 256, CPU float32
    python bench/train.py --preset tiny --batch 4 --seq 128 --repeats 3
    python bench/train.py --device cuda            # bf16 autocast on GPU (auto picks CUDA when present)

Ours = `pretrain.step.forward_backward` (cross-entropy + per-sequence load-balancing loss) on the model
after `pretrain.parallelize` (1 rank: megatron-core process groups, no sharding) -> global-norm clip ->
AdamW. HF = `model(input_ids, labels=..., output_router_logits=True)` (cross-entropy + its router aux
loss, same coefficient) -> `clip_grad_norm_` -> AdamW. MFU = model FLOPs (matmuls, fwd + bwd, top-k
active experts; `pretrain.metrics.model_flops_per_token`) per second / the best square-matmul FLOP/s
measured in this process before, between and after the repeats. Implementations alternate within each repeat so
load from other processes hits both; the table shows the median and the best repeat.
Writes JSON to --out (default bench/out/train.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import pretrain  # noqa: E402,F401  (quiets megatron-core's import warnings)
from common.progress import print_table  # noqa: E402
from model import Transformer, get_preset, hf  # noqa: E402
from pretrain.config import OptimConfig  # noqa: E402
from pretrain.data import MicroBatch  # noqa: E402
from pretrain.distributed import init_distributed, shutdown  # noqa: E402
from pretrain.metrics import measure_matmul_peak, model_flops_per_token, param_counts  # noqa: E402
from pretrain.optim import build_optimizer, set_lr  # noqa: E402
from pretrain.mesh import init_mesh  # noqa: E402
from pretrain.parallelize import parallelize  # noqa: E402
from pretrain.step import RouterTap, forward_backward  # noqa: E402
from bench.timing import time_interleaved  # noqa: E402

AUX_COEF = 0.01


def build(preset: str, vocab: int | None, device: torch.device, seed: int):
    import transformers

    args = get_preset(preset, **({"vocab_size": vocab} if vocab else {}))
    torch.manual_seed(seed)
    ours = Transformer(args)
    ours.init_weights()
    config = {k: v for k, v in hf.hf_config_from_args(args).items() if k not in ("architectures", "model_type", "dtype")}
    theirs = transformers.GptOssForCausalLM(transformers.GptOssConfig(**config, router_aux_loss_coef=AUX_COEF))
    theirs.load_state_dict(hf.to_hf_state_dict(ours))
    plan = parallelize(ours, init_mesh(1, 1))
    ours.to(device)
    plan.params = dict(ours.named_parameters())
    return args, plan, theirs.to(device).train()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--vocab", type=int, default=None, help="override the preset's vocab size (the demo's tokenizer)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/out/train.json")
    a = p.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    rt = init_distributed("auto")  # one rank: the trainer's process groups are real, just of size 1
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    if device.type == "cuda" and rt.device.type != "cuda":
        raise SystemExit("--device cuda: CUDA is not available")
    autocast = torch.bfloat16 if device.type == "cuda" else None
    amp_dtype = autocast or torch.float32
    try:
        args, plan, theirs = build(a.preset, a.vocab, device, a.seed)
        ours = plan.model
        tap = RouterTap(ours)
        opt_ours = build_optimizer(plan.params, OptimConfig())
        opt_theirs = build_optimizer(dict(theirs.named_parameters()), OptimConfig())
        for opt in (opt_ours, opt_theirs):
            set_lr(opt, 1e-4)
        gen = torch.Generator().manual_seed(a.seed)
        tokens = torch.randint(0, args.vocab_size, (a.batch, a.seq + 1), generator=gen).to(device)
        batch = MicroBatch(tokens=tokens[:, :-1], labels=tokens[:, 1:], loss_mask=torch.ones(a.batch, a.seq, device=device))

        def step_ours() -> float:
            res = forward_backward(ours, [batch], tap=tap, aux_coef=AUX_COEF, aux_scope="sequence",
                                   global_sequences=a.batch, dp_group=plan.mesh.dp_group, autocast_dtype=autocast)
            plan.sync_grads()
            plan.clip_grads(1.0)
            opt_ours.step()
            opt_ours.zero_grad(set_to_none=True)
            return res.lm_loss

        def step_theirs() -> float:
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                out = theirs(input_ids=batch.tokens, output_router_logits=True)
            # the same T predicted positions as ours (HF's `labels=` would shift inside and score T-1)
            lm = torch.nn.functional.cross_entropy(out.logits.float().flatten(0, 1), batch.labels.flatten())
            (lm + AUX_COEF * out.aux_loss).backward()
            torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
            opt_theirs.step()
            opt_theirs.zero_grad(set_to_none=True)
            return float(lm.detach())

        steps = {"ours (pretrain step)": step_ours, "hf GptOssForCausalLM": step_theirs}
        # the peak is measured between repeats too: on a shared machine load comes and goes, and the
        # best of these is the closest to what the cores can do
        peaks = [measure_matmul_peak(device, amp_dtype)]
        times, first_loss = time_interleaved(
            steps, device, a.warmup, a.repeats,
            before_timed_round=lambda: peaks.append(measure_matmul_peak(device, amp_dtype, seconds=0.3)))
        peaks.append(measure_matmul_peak(device, amp_dtype))
        peak = max(peaks)
    finally:
        shutdown()

    flops = model_flops_per_token(args, a.seq)
    tokens_per_step = a.batch * a.seq
    results, rows = [], []
    base_med = statistics.median(times["hf GptOssForCausalLM"])
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        results.append({"impl": name, "step_s_median": med, "step_s_best": best,
                        "tokens_per_s_median": tokens_per_step / med, "tokens_per_s_best": tokens_per_step / best,
                        "mfu_median": flops * tokens_per_step / med / peak, "mfu_best": flops * tokens_per_step / best / peak,
                        "speedup_vs_hf_median": base_med / med, "first_loss": first_loss[name], "step_s_all": ts})
        rows.append({"impl": name, "tok/s median": f"{tokens_per_step / med:,.0f}",
                     "tok/s best": f"{tokens_per_step / best:,.0f}",
                     "MFU median": f"{100 * flops * tokens_per_step / med / peak:.1f}%",
                     "MFU best": f"{100 * flops * tokens_per_step / best / peak:.1f}%",
                     "vs HF median": f"{base_med / med:.2f}x", "first lm loss": f"{first_loss[name]:.5f}"})

    import transformers
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    counts = param_counts(args)
    title = (f"training step, preset {a.preset} (vocab {args.vocab_size}, {counts['total'] / 1e6:.1f}M params, "
             f"{counts['active'] / 1e6:.1f}M active), batch {a.batch}x{a.seq}, {device.type} ({device_name}), "
             f"{'bf16 autocast' if autocast else 'float32'}, threads {torch.get_num_threads()}, "
             f"matmul peak {peak / 1e9:.1f} GFLOP/s, {flops / 1e6:.1f} MFLOP/token, load avg {os.getloadavg()[0]:.1f}")
    print_table(rows, title=title)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "preset": a.preset, "vocab_size": args.vocab_size, "batch": a.batch, "seq": a.seq, "device": device.type,
        "device_name": device_name, "dtype": "bf16 autocast" if autocast else "float32",
        "threads": torch.get_num_threads(), "matmul_peak_flops": peak, "matmul_peaks": peaks,
        "model_flops_per_token": flops, "params": counts, "load_avg_1min": os.getloadavg()[0],
        "torch": torch.__version__, "transformers": transformers.__version__, "repeats": a.repeats,
        "warmup": a.warmup, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
