"""Forward+backward tokens/s: this repo's GPT-OSS (`model.Transformer`) vs `transformers.GptOssForCausalLM`
on the same config, weights and batch, side by side in one run.

    python bench/model.py                                  # small preset, 8x256 and 2x1024, CPU float32
    python bench/model.py --preset tiny --shapes 4x128 --repeats 3
    python bench/model.py --device cuda                    # bf16 autocast on GPU

One step = logits -> cross-entropy (float32) -> backward -> zero grads. Implementations alternate
within each repeat so that load from other processes hits both alike; the table reports the median
and the best repeat (the least disturbed). HF runs with its defaults (eager attention, `grouped_mm`
experts in transformers 5.x) and, with `--hf-experts-eager`, also with its per-expert loop.
Writes JSON to --out (default bench/out/model.json).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.progress import print_table  # noqa: E402
from model import Transformer, get_preset  # noqa: E402
from model import hf  # noqa: E402
from bench.timing import time_interleaved  # noqa: E402


def build(preset: str, device: torch.device, hf_experts: list[str], seed: int):
    import transformers

    torch.manual_seed(seed)
    args = get_preset(preset)
    ours = Transformer(args)
    ours.init_weights()
    config = {k: v for k, v in hf.hf_config_from_args(args).items() if k not in ("architectures", "model_type", "dtype")}
    models = {"ours": ours.to(device)}
    for impl in hf_experts:
        ref = transformers.GptOssForCausalLM(transformers.GptOssConfig(**config, experts_implementation=impl))
        ref.load_state_dict(hf.to_hf_state_dict(ours))
        models[f"hf ({impl} experts)"] = ref.to(device)
    return args, models


def logits_of(name: str, model, tokens: torch.Tensor) -> torch.Tensor:
    return model(tokens) if name == "ours" else model(tokens).logits


def train_step(name: str, model, tokens: torch.Tensor, autocast_dtype) -> None:
    with torch.autocast(tokens.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits = logits_of(name, model, tokens[:, :-1])
    loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
    loss.backward()
    model.zero_grad(set_to_none=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--shapes", default="8x256,2x1024", help="comma-separated BATCHxSEQ")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--hf-experts-eager", action="store_true", help="also time HF's per-expert loop")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/out/model.json")
    a = p.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    autocast_dtype = torch.bfloat16 if device.type == "cuda" else None
    shapes = [tuple(int(n) for n in s.lower().split("x")) for s in a.shapes.split(",")]
    hf_experts = ["grouped_mm"] + (["eager"] if a.hf_experts_eager else [])
    args, models = build(a.preset, device, hf_experts, a.seed)

    results, rows = [], []
    for batch, seq in shapes:
        gen = torch.Generator().manual_seed(a.seed)
        tokens = torch.randint(0, args.vocab_size, (batch, seq + 1), generator=gen).to(device)
        with torch.no_grad():  # same weights must give the same logits, or the comparison is void
            reference = logits_of("ours", models["ours"], tokens[:, :-1]).float()
            max_diff = {n: (logits_of(n, m, tokens[:, :-1]).float() - reference).abs().max().item()
                        for n, m in models.items()}
        steps = {name: (lambda name=name, model=model: train_step(name, model, tokens, autocast_dtype))
                 for name, model in models.items()}
        times, _ = time_interleaved(steps, device, a.warmup, a.repeats)
        base = statistics.median(times["hf (grouped_mm experts)"])
        base_best = min(times["hf (grouped_mm experts)"])
        for name, ts in times.items():
            med, best = statistics.median(ts), min(ts)
            results.append({"batch": batch, "seq": seq, "impl": name, "step_s_median": med, "step_s_best": best,
                            "tokens_per_s_median": batch * seq / med, "tokens_per_s_best": batch * seq / best,
                            "speedup_vs_hf_median": base / med, "speedup_vs_hf_best": base_best / best,
                            "logits_max_abs_diff_vs_ours": max_diff[name], "step_s_all": ts})
            rows.append({"shape": f"{batch}x{seq}", "impl": name, "tok/s median": f"{batch * seq / med:,.0f}",
                         "tok/s best": f"{batch * seq / best:,.0f}", "vs HF median": f"{base / med:.2f}x",
                         "vs HF best": f"{base_best / best:.2f}x", "logit diff": f"{max_diff[name]:.1e}"})

    import transformers
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    title = (f"GPT-OSS fwd+bwd, preset {a.preset}, {device.type} ({device_name}), "
             f"{'bf16 autocast' if autocast_dtype else 'float32'}, threads {torch.get_num_threads()}")
    print_table(rows, title=title)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "preset": a.preset, "device": device.type, "device_name": device_name,
        "dtype": "bf16 autocast" if autocast_dtype else "float32", "threads": torch.get_num_threads(),
        "torch": torch.__version__, "transformers": transformers.__version__, "repeats": a.repeats,
        "warmup": a.warmup, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
