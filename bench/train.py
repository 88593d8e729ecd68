"""One full training step, tokens/s and MFU: this repo's trainer step vs `transformers.GptOssForCausalLM`'s,
same config, same initial weights, same batch, in one process side by side.

    python bench/train.py                          # small preset, batch 8 x 256, CPU float32
    python bench/train.py --preset tiny --batch 4 --seq 128 --repeats 3
    python bench/train.py --device cuda            # bf16 autocast on GPU (auto picks CUDA when present)
    python bench/train.py --recompute none,full,selective --fsdp   # ours under each recompute mode, FSDP
    python bench/train.py --device cuda --preset gpt-oss-20b --layers 4 --experts 16 --batch 1 --seq 4096 \
        --recompute none,full,selective --fsdp --no-hf              # the GPU memory/throughput check

Ours = `pretrain.step.forward_backward` (cross-entropy + per-sequence load-balancing loss) on the model
after `pretrain.parallelize` (1 rank: megatron-core process groups, no sharding) -> global-norm clip ->
AdamW. HF = `model(input_ids, labels=..., output_router_logits=True)` (cross-entropy + its router aux
loss, same coefficient) -> `clip_grad_norm_` -> AdamW. MFU = model FLOPs (matmuls, fwd + bwd, top-k
active experts; `pretrain.metrics.model_flops_per_token`) per second / the best square-matmul FLOP/s
measured in this process before, between and after the repeats. Implementations alternate within each repeat so
load from other processes hits both; the table shows the median and the best repeat.
Each implementation's peak memory over its step is reported (CUDA: max_memory_allocated; CPU: growth of
the peak resident size, VmHWM), and for ours the total `pretrain.plan` predicts for that layout on one
rank. Writes JSON to --out (default bench/out/train.json).
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
from common.memory import reset_peak, status_bytes  # noqa: E402
from common.progress import print_table  # noqa: E402
from model import Transformer, get_preset, hf  # noqa: E402
from pretrain.config import OptimConfig  # noqa: E402
from pretrain.data import MicroBatch  # noqa: E402
from pretrain.distributed import init_distributed, shutdown  # noqa: E402
from pretrain.metrics import measure_matmul_peak, model_flops_per_token, param_counts  # noqa: E402
from pretrain.optim import build_optimizer, set_lr  # noqa: E402
from pretrain.mesh import init_mesh  # noqa: E402
from pretrain.parallelize import local_tensor, parallelize  # noqa: E402
from pretrain.plan import Layout, plan as memory_plan  # noqa: E402
from pretrain.recompute import apply_recompute  # noqa: E402
from pretrain.step import forward_backward  # noqa: E402
from bench.timing import time_interleaved  # noqa: E402

AUX_COEF = 0.01


def build(args, device: torch.device, seed: int, *, hf_reference: bool, fsdp: bool, hf_attn: str | None = None):
    if not hf_reference:  # large models: built on the meta device, initialised on the device (fast, not
        # the trainer's layout-independent init: the numbers do not matter for speed and memory)
        with torch.device("meta"):
            ours = Transformer(args)
        plan = parallelize(ours, init_mesh(1, 1, device.type), fsdp=fsdp,
                           param_dtype=torch.bfloat16 if device.type == "cuda" else None)
        ours.to_empty(device=device)
        plan.refresh()
        gen = torch.Generator(device).manual_seed(seed)
        with torch.no_grad():
            for name, p in plan.params.items():
                kind, std = ours.init_rule(name)
                t = local_tensor(p)
                t.normal_(0.0, std, generator=gen) if kind == "normal" else t.fill_(1.0 if kind == "ones" else 0.0)
        return plan, None
    torch.manual_seed(seed)
    ours = Transformer(args)
    ours.init_weights()
    theirs = None
    if hf_reference:
        import transformers
        config = {k: v for k, v in hf.hf_config_from_args(args).items()
                  if k not in ("architectures", "model_type", "dtype")}
        extra = {"attn_implementation": hf_attn} if hf_attn else {}
        theirs = transformers.GptOssForCausalLM(transformers.GptOssConfig(**config, router_aux_loss_coef=AUX_COEF,
                                                                          **extra))
        theirs.load_state_dict(hf.to_hf_state_dict(ours))
        theirs = theirs.to(device).train()
    plan = parallelize(ours, init_mesh(1, 1, device.type), fsdp=fsdp,
                       param_dtype=torch.bfloat16 if device.type == "cuda" else None)
    ours.to(device)
    plan.refresh()
    return plan, theirs


class PeakMemory:
    """Peak memory of what runs between `start` and `stop`: CUDA's allocator peak, or on CPU the growth
    of the peak resident size (VmHWM, reset through /proc/self/clear_refs)."""

    def __init__(self, device: torch.device):
        self.device, self.base = device, 0

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.base = status_bytes("VmRSS") or 0
            reset_peak()

    def stop(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return (status_bytes("VmHWM") or 0) - self.base


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--vocab", type=int, default=None, help="override the preset's vocab size (the demo's tokenizer)")
    p.add_argument("--layers", type=int, default=None, help="override the preset's n_layers")
    p.add_argument("--experts", type=int, default=None, help="override the preset's n_experts")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recompute", default="none", help="ours under each of these modes (comma-separated)")
    p.add_argument("--fsdp", action="store_true", help="ours under FSDP2 (one rank; bf16 all-gather on GPU)")
    p.add_argument("--no-hf", action="store_true", help="skip the transformers reference (large models)")
    p.add_argument("--hf-attn", default=None, help="the reference's attn_implementation (eager, sdpa, "
                   "flex_attention; default: transformers' choice)")
    p.add_argument("--loss-chunk", type=int, default=0, help="ours: train.loss_chunk_tokens")
    p.add_argument("--out", default="bench/out/train.json")
    a = p.parse_args(argv)
    modes = a.recompute.split(",")
    for mode in modes:
        if mode not in ("none", "full", "selective"):
            p.error(f"--recompute: unknown mode {mode!r}")

    if a.threads:
        torch.set_num_threads(a.threads)
    rt = init_distributed("auto")  # one rank: the trainer's process groups are real, just of size 1
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    if device.type == "cuda" and rt.device.type != "cuda":
        raise SystemExit("--device cuda: CUDA is not available")
    autocast = torch.bfloat16 if device.type == "cuda" else None
    amp_dtype = autocast or torch.float32
    overrides = {k: v for k, v in (("vocab_size", a.vocab), ("n_layers", a.layers), ("n_experts", a.experts)) if v}
    args = get_preset(a.preset, **overrides)
    try:
        plan, theirs = build(args, device, a.seed, hf_reference=not a.no_hf, fsdp=a.fsdp, hf_attn=a.hf_attn)
        ours = plan.model
        opt_ours = build_optimizer(plan.params, OptimConfig())
        set_lr(opt_ours, 1e-4)
        gen = torch.Generator().manual_seed(a.seed)
        tokens = torch.randint(0, args.vocab_size, (a.batch, a.seq + 1), generator=gen).to(device)
        batch = MicroBatch(tokens=tokens[:, :-1], labels=tokens[:, 1:],
                           loss_mask=torch.ones(a.batch, a.seq, device=device))
        meter, peak_mem = PeakMemory(device), {}

        def measured(name, fn):
            def run():
                meter.start()
                out = fn()
                peak_mem[name] = max(peak_mem.get(name, 0), meter.stop())
                return out
            return run

        def step_ours(mode: str):
            def step() -> float:
                apply_recompute(ours, mode)
                res = forward_backward(ours, [batch], aux_coef=AUX_COEF, aux_scope="sequence",
                                       global_sequences=a.batch, dp_group=plan.mesh.dp_group,
                                       autocast_dtype=autocast, loss_chunk_tokens=a.loss_chunk)
                plan.sync_grads()
                plan.clip_grads(1.0)
                opt_ours.step()
                opt_ours.zero_grad(set_to_none=True)
                return res.lm_loss
            return step

        steps = {f"ours, recompute {m}{', fsdp' if a.fsdp else ''}": measured(m, step_ours(m)) for m in modes}
        if theirs is not None:
            opt_theirs = build_optimizer(dict(theirs.named_parameters()), OptimConfig())
            set_lr(opt_theirs, 1e-4)

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

            steps["hf GptOssForCausalLM"] = measured("hf", step_theirs)
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
    names = list(times)
    base_med = statistics.median(times[names[-1]])  # HF when it ran, else the last mode
    for (name, ts), key in zip(times.items(), [*modes, "hf"]):
        med, best = statistics.median(ts), min(ts)
        planned = None
        if key != "hf" and device.type == "cuda":  # on CPU the meter sees the growth, not the total
            layout = Layout(gpus=1, fsdp=a.fsdp, seq=a.seq, micro_batch=a.batch, recompute=key, device=device.type,
                            loss_chunk=a.loss_chunk)
            planned = memory_plan(args, layout, 1 << 50)["per_gpu_bytes"]["total"]
        results.append({"impl": name, "recompute": key if key != "hf" else None, "step_s_median": med,
                        "step_s_best": best, "tokens_per_s_median": tokens_per_step / med,
                        "tokens_per_s_best": tokens_per_step / best,
                        "mfu_median": flops * tokens_per_step / med / peak, "mfu_best": flops * tokens_per_step / best / peak,
                        "speedup_vs_last_median": base_med / med, "first_loss": first_loss[name], "step_s_all": ts,
                        "peak_memory_bytes": peak_mem.get(key), "planned_total_bytes": planned})
        rows.append({"impl": name, "tok/s median": f"{tokens_per_step / med:,.0f}",
                     "tok/s best": f"{tokens_per_step / best:,.0f}",
                     "MFU median": f"{100 * flops * tokens_per_step / med / peak:.1f}%",
                     "vs last median": f"{base_med / med:.2f}x", "first lm loss": f"{first_loss[name]:.5f}",
                     "peak mem": f"{peak_mem.get(key, 0) / 2**30:.2f} GiB",
                     "planned": f"{planned / 2**30:.2f} GiB" if planned else "-",
                     "planned/peak": f"{planned / peak_mem[key]:.2f}" if planned and peak_mem.get(key) else "-"})

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    counts = param_counts(args)
    title = (f"training step, preset {a.preset} (vocab {args.vocab_size}, {args.n_layers} layers, {args.n_experts} "
             f"experts, {counts['total'] / 1e6:.1f}M params, {counts['active'] / 1e6:.1f}M active), batch "
             f"{a.batch}x{a.seq}, {device.type} ({device_name}), {'bf16 autocast' if autocast else 'float32'}"
             f"{', FSDP' if a.fsdp else ''}, threads {torch.get_num_threads()}, matmul peak {peak / 1e9:.1f} "
             f"GFLOP/s, {flops / 1e6:.1f} MFLOP/token, load avg {os.getloadavg()[0]:.1f}")
    print_table(rows, title=title)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import transformers
    out.write_text(json.dumps({
        "preset": a.preset, "model_args": {"vocab_size": args.vocab_size, "n_layers": args.n_layers,
                                           "n_experts": args.n_experts},
        "vocab_size": args.vocab_size, "batch": a.batch, "seq": a.seq, "device": device.type,
        "device_name": device_name, "dtype": "bf16 autocast" if autocast else "float32", "fsdp": a.fsdp,
        "threads": torch.get_num_threads(), "matmul_peak_flops": peak, "matmul_peaks": peaks,
        "model_flops_per_token": flops, "params": counts, "load_avg_1min": os.getloadavg()[0],
        "torch": torch.__version__, "transformers": transformers.__version__, "repeats": a.repeats,
        "warmup": a.warmup, "hf_attn": a.hf_attn, "loss_chunk": a.loss_chunk, "results": results},
        indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
