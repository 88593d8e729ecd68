"""The GPU check: one script for a lent GPU machine, most valuable measurement first, each part in its own
process with its own time limit, results appended to OUT/gpu_check.json as they come.

    python bench/gpu_check.py --out $OUT [--run-dir DIR] [--quick]

1. memory   `bench/train.py` on the gpt-oss-20b slice (4 layers, 16 experts, vocab 201,088), FSDP on one
            GPU, bf16: peak `torch.cuda.max_memory_allocated` vs `pretrain.plan`'s total, tokens/s and
            MFU per recompute mode, at 4,096 and 16,384 tokens.
2. trainer  `pretrain.train --preset tiny` on CUDA with FSDP + selective recompute, twice with the same
            seed (do the losses agree bit for bit?), and once replicated without recompute.
3. determinism  the same training steps twice from the same weights under (a) the defaults and
            (b) `torch.use_deterministic_algorithms(True)` + CUBLAS_WORKSPACE_CONFIG: equal or not, and
            seconds per step; (c) the ops warn-only mode names.
--run-dir: a finished tokenize output to train on (RUN/tokenize + RUN/cbrn), e.g. a copy of a tiny run.
--quick: small shapes, CPU allowed (to try the script itself).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def record(out: Path, name: str, result) -> None:
    path = out / "gpu_check.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[name] = result
    path.write_text(json.dumps(data, indent=1) + "\n")


def sh(cmd: list[str], timeout: int, env: dict | None = None, log: Path | None = None) -> tuple[int, str]:
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)
        rc, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, text = 124, f"timeout after {timeout} s\n{(e.stdout or b'')[-4000:]!r}"
    if log:
        with open(log, "a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}  ({time.time() - t0:.0f} s, rc {rc})\n{text[-20000:]}\n")
    print(f"[gpu_check] {' '.join(cmd[:6])} ... rc {rc} in {time.time() - t0:.0f} s", flush=True)
    return rc, text


def memory_part(out: Path, quick: bool) -> None:
    cases = ([("4096", "none,full,selective"), ("16384", "full,selective")] if not quick
             else [("64", "none,full,selective")])
    for seq, modes in cases:
        target = out / f"train_{seq}.json"
        model = (["--preset", "gpt-oss-20b", "--layers", "4", "--experts", "16"] if not quick
                 else ["--preset", "tiny"])
        rc, text = sh([sys.executable, "bench/train.py", *model, "--batch", "1", "--seq", seq, "--recompute", modes,
                       "--fsdp", "--no-hf", "--repeats", "3", "--warmup", "1", "--out", str(target)],
                      timeout=200, log=out / "gpu_check.log")
        result = json.loads(target.read_text()) if target.is_file() else {"rc": rc, "tail": text[-3000:]}
        record(out, f"memory_seq{seq}", result)


def trainer_part(out: Path, run_dir: Path, quick: bool) -> None:
    common = ["--preset", "tiny", "--max-steps", "12", "log.plots=false", "log.tensorboard=false",
              'checkpoint.export_hf="none"']
    variants = {"fsdp_selective_a": ["parallel.fsdp=true", 'activation_checkpoint="selective"'],
                "fsdp_selective_b": ["parallel.fsdp=true", 'activation_checkpoint="selective"'],
                "replicated": []}
    losses = {}
    for name, extra in variants.items():
        run = Path("/tmp/gpu_check_runs") / name
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        for stage in ("tokenize", "cbrn"):
            shutil.copytree(run_dir / stage, run / stage)
        rc, text = sh([sys.executable, "-m", "pretrain.train", "--run-dir", str(run), *common, *extra], timeout=150,
                      log=out / "gpu_check.log")
        metrics = run / "train" / "metrics.jsonl"
        rows = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.is_file() else []
        losses[name] = {"rc": rc, "losses": [r["loss"] for r in rows],
                        "tokens_per_s": [r["tokens_per_s"] for r in rows], "tail": text[-1500:] if rc else ""}
    a, b = losses["fsdp_selective_a"]["losses"], losses["fsdp_selective_b"]["losses"]
    record(out, "trainer", {**losses, "fsdp_runs_bit_equal": bool(a) and a == b,
                            "first_difference_step": next((i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y), None)})


DETERMINISM_PROBE = r'''
import json, os, sys, time, warnings
import torch
sys.path.insert(0, os.getcwd())
import pretrain  # noqa
from model import Transformer, get_preset
from pretrain.config import OptimConfig
from pretrain.data import MicroBatch
from pretrain.distributed import init_distributed, shutdown
from pretrain.mesh import init_mesh
from pretrain.optim import build_optimizer, set_lr
from pretrain.parallelize import parallelize
from pretrain.step import forward_backward
mode, quick = sys.argv[1], sys.argv[2] == "1"
if mode == "deterministic":
    torch.use_deterministic_algorithms(True)
elif mode == "warn_only":
    torch.use_deterministic_algorithms(True, warn_only=True)
rt = init_distributed("auto")
device = rt.device
args = get_preset("tiny") if quick else get_preset("gpt-oss-20b", n_layers=2, n_experts=8, vocab_size=32768)
B, T = (2, 64) if quick else (4, 2048)
def run():
    torch.manual_seed(0)
    model = Transformer(args); model.init_weights()
    plan = parallelize(model, init_mesh(1, 1, device.type)); model.to(device); plan.refresh()
    opt = build_optimizer(plan.params, OptimConfig()); set_lr(opt, 1e-4)
    g = torch.Generator().manual_seed(1)
    losses, times = [], []
    for step in range(4):
        tok = torch.randint(0, args.vocab_size, (B, T + 1), generator=g).to(device)
        mb = MicroBatch(tokens=tok[:, :-1], labels=tok[:, 1:], loss_mask=torch.ones(B, T, device=device))
        if device.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = forward_backward(model, [mb], aux_coef=0.01, aux_scope="sequence", global_sequences=B,
                               dp_group=plan.mesh.dp_group,
                               autocast_dtype=torch.bfloat16 if device.type == "cuda" else None)
        gn = float(plan.clip_grads(1.0)); opt.step(); opt.zero_grad(set_to_none=True)
        if device.type == "cuda": torch.cuda.synchronize()
        times.append(time.perf_counter() - t0); losses.append((res.loss, gn))
    digest = float(sum(p.detach().double().sum() for p in plan.params.values()))
    return losses, times, digest
caught = []
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    first = run(); second = run()
    caught = sorted({str(x.message).split(".")[0][:160] for x in w if "deterministic" in str(x.message).lower()})
print(json.dumps({"mode": mode, "equal": first[0] == second[0] and first[2] == second[2],
                  "losses_a": first[0], "losses_b": second[0], "step_s_a": first[1], "step_s_b": second[1],
                  "warnings": caught}))
shutdown()
'''


def determinism_part(out: Path, quick: bool) -> None:
    probe = out / "determinism_probe.py"
    probe.write_text(DETERMINISM_PROBE)
    results = {}
    for mode in ("default", "deterministic", "warn_only"):
        env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"} if mode != "default" else {}
        rc, text = sh([sys.executable, str(probe), mode, "1" if quick else "0"], timeout=150, env=env,
                      log=out / "gpu_check.log")
        try:
            results[mode] = json.loads(text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            results[mode] = {"rc": rc, "tail": text[-2000:]}
    record(out, "determinism", results)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "bench/out/gpu_check"))
    p.add_argument("--run-dir", default=".gpu/run")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", default="memory,trainer,determinism")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    record(out, "env", {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
                        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for part in a.parts.split(","):
        t0 = time.time()
        if part == "memory":
            memory_part(out, a.quick)
        elif part == "trainer":
            trainer_part(out, Path(a.run_dir), a.quick)
        elif part == "determinism":
            determinism_part(out, a.quick)
        print(f"[gpu_check] part {part} done in {time.time() - t0:.0f} s", flush=True)
    print(json.dumps(json.loads((out / "gpu_check.json").read_text()), indent=1)[:8000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
