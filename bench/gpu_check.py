"""The GPU check (run through `bench/gpu_check.sh`): one script for a lent H100/H200, at most ~8 minutes,
each part in its own process with its own time limit, ending with ONE JSON summary, printed as the last
line and written to bench/out/gpu_check.json (details and logs in bench/out/gpu_check/).

Parts, most valuable first:
1. parity        fp32 logits of `model.Transformer` vs transformers' `GptOssForCausalLM` (eager attention)
                 on CUDA, TF32 off: max |difference| (sliding and full layers, sinks, YaRN).
2. step          `bench/train.py` on the gpt-oss-20b slice (4 layers, 16 experts, vocab 201,088, batch
                 8 x 2048, bf16): our isolated training step vs HF's (flex_attention) tokens/s and MFU.
3. loop          the real loop (`pretrain.train`) on the same slice shapes (vocab: the run's tokenizer),
                 tokens/s and MFU from metrics.jsonl, with `train.deterministic` false and true: the cost.
4. determinism   a 2-layer slice with `train.deterministic = true`: two runs bit-equal? A run stopped by
                 SIGTERM and resumed bit-equal to the uninterrupted one?
5. long_context  the 4-layer slice, batch 1, full recompute, loss head in chunks of 4096: tokens/s and
                 peak memory at 4k, 16k, 64k and 131k tokens (and what `pretrain.plan` predicted).
Without CUDA it fails loudly (exit 2, "ok": false) unless `--cpu-selftest` is given, which runs every
part with tiny shapes on CPU to test the script itself (tests/bench/test_gpu_check.py).

    bash bench/gpu_check.sh [--parts parity,step,...] [--run-dir DIR] [--cpu-selftest]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PARTS = ("parity", "step", "loop", "determinism", "long_context")
SLICE = {"n_layers": 4, "n_experts": 16}  # gpt-oss-20b shapes (2880 wide, 64 heads, top-4, vocab 201,088)
BUDGET_S = 480  # the whole check; each part gets at most what is left


class Check:
    def __init__(self, out: Path, cpu: bool, run_dir: Path):
        self.out, self.cpu, self.run_dir = out, cpu, run_dir
        self.detail = out / "gpu_check"
        self.detail.mkdir(parents=True, exist_ok=True)
        self.log = self.detail / "gpu_check.log"
        self.t0 = time.time()

    def left(self) -> float:
        return BUDGET_S * (3 if self.cpu else 1) - (time.time() - self.t0)

    def sh(self, cmd: list, timeout: float, env: dict | None = None) -> tuple[int, str]:
        cmd = [str(c) for c in cmd]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                                  timeout=max(5.0, timeout))
            rc, text = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, text = 124, f"timeout after {timeout:.0f} s\n{(e.stdout or b'')[-4000:]!r}"
        with open(self.log, "a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}  ({time.time() - t0:.0f} s, rc {rc})\n{text[-20000:]}\n")
        print(f"[gpu_check] {' '.join(cmd[1:5])} ... rc {rc} in {time.time() - t0:.0f} s", flush=True)
        return rc, text

    def python_part(self, name: str, *args, timeout: float, env: dict | None = None) -> dict:
        rc, text = self.sh([sys.executable, __file__, "--in-process", name, *args, *(["--cpu-selftest"] if self.cpu else [])],
                           timeout, env)
        for line in reversed(text.strip().splitlines()):  # libraries may log after the result line
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    break
        return {"error": f"rc {rc}", "tail": text[-1500:]}

    # ------------------------------------------------------------ data for the trainer parts

    def ensure_run_dir(self) -> Path:
        if (self.run_dir / "tokenize" / "manifest.json").is_file():
            return self.run_dir
        rc, text = self.sh([sys.executable, "-m", "pipeline", "run", "--preset", "tiny", "--stages",
                            "ingest,dedupe,cbrn,tokenize", "--run-dir", self.run_dir, "--set",
                            "tokenize.vocab_size=512"], timeout=min(240, self.left()))
        if rc != 0:
            raise RuntimeError(f"could not make the training data in {self.run_dir}: {text[-800:]}")
        return self.run_dir

    def train_run(self, name: str, overrides: list[str], *, stop_after: int | None = None,
                  sig: int | None = None, timeout: float, fresh: bool = True) -> dict:
        """`pretrain.train` on a copy of the run's data; with `stop_after`, send `sig` once that many
        steps are logged (SIGKILL: measure without writing a checkpoint; SIGTERM: checkpoint and exit 75)."""
        run = self.detail / "runs" / name
        if fresh:
            shutil.rmtree(run, ignore_errors=True)
            for stage in ("tokenize", "cbrn"):
                shutil.copytree(self.ensure_run_dir() / stage, run / stage)
        settings = ["log.plots=false", "log.tensorboard=false", 'checkpoint.export_hf="none"', "log.every=1", *overrides]
        cmd = [sys.executable, "-m", "pretrain.train", "--run-dir", str(run),
               *(x for o in settings for x in ("--set", o if o.startswith("train.") else f"train.{o}"))]
        metrics = run / "train" / "metrics.jsonl"
        t0, rc = time.time(), None
        with open(self.detail / f"{name}.log", "a") as fh:
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
            while proc.poll() is None:
                if time.time() - t0 > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    rc = 124
                    break
                if stop_after and metrics.is_file() and len(metrics.read_text().splitlines()) >= stop_after:
                    os.killpg(proc.pid, sig)
                    proc.wait()
                    break
                time.sleep(0.2)
            rc = proc.returncode if rc is None else rc
        rows = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.is_file() else []
        return {"rc": rc, "run": str(run), "rows": rows, "seconds": time.time() - t0}


def loop_numbers(rows: list[dict], skip: int = 2) -> dict:
    timed = rows[skip:] or rows
    if not timed:
        return {"error": "no steps logged"}
    tps = sorted(r["tokens_per_s"] for r in timed)
    mfu = sorted(r["mfu"] for r in timed)
    return {"steps": len(rows), "tokens_per_s_median": tps[len(tps) // 2], "mfu_median": mfu[len(mfu) // 2]}


# ---------------------------------------------------------------- parts (run by the orchestrator)

def part_parity(c: Check) -> dict:
    return c.python_part("parity", timeout=min(150, c.left()))


def part_step(c: Check) -> dict:
    target = c.detail / "step.json"
    shape = (["--preset", "tiny", "--batch", "2", "--seq", "64", "--hf-attn", "eager"] if c.cpu else
             ["--preset", "gpt-oss-20b", "--layers", SLICE["n_layers"], "--experts", SLICE["n_experts"],
              "--batch", "8", "--seq", "2048", "--hf-attn", "flex_attention"])
    rc, text = c.sh([sys.executable, "bench/train.py", *shape, "--repeats", "3", "--warmup", "1", "--out", target],
                    timeout=min(200, c.left()))
    if rc != 0 or not target.is_file():
        return {"error": f"bench/train.py rc {rc}", "tail": text[-1500:]}
    data = json.loads(target.read_text())
    res = {r["impl"].split(",")[0].split()[0]: r for r in data["results"]}
    ours, hf = res.get("ours"), res.get("hf")
    return {"shape": f"{data['batch']}x{data['seq']}", "hf_attn": data.get("hf_attn"),
            "ours_tokens_per_s": ours and ours["tokens_per_s_median"], "ours_mfu": ours and ours["mfu_median"],
            "hf_tokens_per_s": hf and hf["tokens_per_s_median"], "hf_mfu": hf and hf["mfu_median"],
            "ours_over_hf": ours and hf and hf["step_s_median"] / ours["step_s_median"]}


def _slice_overrides(c: Check, *, layers: int, experts: int, seq: int, batch: int, steps: int) -> list[str]:
    if c.cpu:
        return ["train.model.preset=\"tiny\"", "checkpoint.every=0",
                f"train.phases=[{{name='p', steps={steps}, seq_len=64, global_batch=2, warmup_steps=1}}]"]
    over = f"{{n_layers={layers}, n_experts={experts}}}"
    return ["train.model.preset=\"gpt-oss-20b\"", f"train.model.overrides={over}", "parallel.fsdp=true",
            "checkpoint.every=0", "data.valid_fraction=0",
            f"train.phases=[{{name='p', steps={steps}, seq_len={seq}, global_batch={batch}, lr=1e-4, "
            f"min_lr=1e-5, warmup_steps=2}}]"]


def part_loop(c: Check) -> dict:
    out = {}
    base = _slice_overrides(c, layers=SLICE["n_layers"], experts=SLICE["n_experts"], seq=2048, batch=8, steps=1000)
    for flag in ("false", "true"):  # killed after 12 steps: no 34 GB checkpoint is written
        run = c.train_run(f"loop-deterministic-{flag}", [*base, f"deterministic={flag}"], stop_after=12,
                          sig=signal.SIGKILL, timeout=min(150, c.left() / 2))
        out[f"deterministic_{flag}"] = {**loop_numbers(run["rows"]), "rc": run["rc"]}
    fast, exact = out["deterministic_false"].get("tokens_per_s_median"), out["deterministic_true"].get("tokens_per_s_median")
    out["deterministic_cost"] = 1 - exact / fast if fast and exact else None
    return out


def part_determinism(c: Check) -> dict:
    over = [*_slice_overrides(c, layers=2, experts=4, seq=1024, batch=4, steps=8), "deterministic=true"]
    a = c.train_run("det-a", over, timeout=min(120, c.left() / 3))
    b = c.train_run("det-b", over, timeout=min(120, c.left() / 2))
    stopped = c.train_run("det-resume", over, stop_after=4, sig=signal.SIGTERM, timeout=min(120, c.left() / 2))
    resumed = c.train_run("det-resume", over, timeout=min(120, c.left()), fresh=False)
    losses = lambda r: [(x["step"], x["loss"], x["grad_norm"]) for x in r["rows"]]
    return {"reruns_bit_equal": bool(a["rows"]) and losses(a) == losses(b),
            "resume_bit_equal": bool(a["rows"]) and losses(resumed) == losses(a),
            "sigterm_exit": stopped["rc"], "steps": len(a["rows"]),
            "rc": [a["rc"], b["rc"], resumed["rc"]]}


def part_long_context(c: Check) -> dict:
    rows = []
    for seq in ([64, 128] if c.cpu else [4096, 16384, 65536, 131072]):
        target = c.detail / f"long_{seq}.json"
        shape = (["--preset", "tiny"] if c.cpu else
                 ["--preset", "gpt-oss-20b", "--layers", SLICE["n_layers"], "--experts", SLICE["n_experts"]])
        if c.left() < 30:
            rows.append({"seq": seq, "error": "not run: the check's time budget is spent"})
            continue
        rc, text = c.sh([sys.executable, "bench/train.py", *shape, "--batch", "1", "--seq", seq, "--recompute", "full",
                         "--fsdp", "--no-hf", "--loss-chunk", "4096", "--repeats", "1", "--warmup", "1",
                         "--out", target], timeout=min(150, c.left()))
        if rc != 0 or not target.is_file():
            rows.append({"seq": seq, "error": f"rc {rc}", "tail": text[-800:]})
            continue
        r = json.loads(target.read_text())["results"][0]
        rows.append({"seq": seq, "tokens_per_s": r["tokens_per_s_median"], "mfu": r["mfu_median"],
                     "peak_memory_gib": (r["peak_memory_bytes"] or 0) / 2**30,
                     "planned_gib": r["planned_total_bytes"] and r["planned_total_bytes"] / 2**30})
    return {"rows": rows}


# ---------------------------------------------------------------- in-process helpers

def in_process_parity(cpu: bool) -> dict:
    import torch
    import transformers
    from model import Transformer, get_preset, hf
    device = torch.device("cpu" if cpu else "cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    args = get_preset("tiny", yarn_factor=4.0, yarn_original_context=64)
    torch.manual_seed(0)
    ours = Transformer(args)
    ours.init_weights()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith("sinks") or name.endswith("bias"):
                p.normal_(0.0, 0.5)
    config = {k: v for k, v in hf.hf_config_from_args(args).items() if k not in ("architectures", "model_type", "dtype")}
    theirs = transformers.GptOssForCausalLM(transformers.GptOssConfig(**config, attn_implementation="eager"))
    theirs.load_state_dict(hf.to_hf_state_dict(ours))
    ours, theirs = ours.to(device).eval(), theirs.to(device).eval()
    tokens = torch.randint(0, args.vocab_size, (2, 4 * args.sliding_window + 5), device=device)
    with torch.no_grad():
        a, b = ours(tokens), theirs(input_ids=tokens).logits
    diff = float((a - b).abs().max())
    return {"device": device.type, "max_abs_diff": diff, "logits_max_abs": float(b.abs().max()),
            "ok": diff <= 1e-4, "tokens": list(tokens.shape)}


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "bench" / "out"), help="gpu_check.json goes here")
    p.add_argument("--run-dir", default=None, help="tokenized data for the trainer parts (default: made with "
                                                   "the tiny pipeline under OUT/gpu_check/data)")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--cpu-selftest", action="store_true", help="no GPU: run every part with tiny shapes on CPU")
    p.add_argument("--in-process", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.in_process == "parity":
        print(json.dumps(in_process_parity(a.cpu_selftest)))
        return 0

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    summary = {"ok": False, "cuda": torch.cuda.is_available(), "cpu_selftest": a.cpu_selftest,
               "torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    if not torch.cuda.is_available() and not a.cpu_selftest:
        summary["error"] = ("CUDA is not available: this check measures a GPU and runs nothing without one "
                            "(--cpu-selftest tries the script itself on CPU)")
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"gpu_check: FAILED: {summary['error']}", file=sys.stderr)
        print(json.dumps(summary))
        return 2
    check = Check(out, a.cpu_selftest, Path(a.run_dir) if a.run_dir else out / "gpu_check" / "data")
    failures = []
    for part in a.parts.split(","):
        if part not in PARTS:
            p.error(f"--parts: unknown part {part!r}; known: {', '.join(PARTS)}")
        t0 = time.time()
        if check.left() < 20:
            summary[part] = {"error": "not run: the check's time budget is spent"}
        else:
            try:
                summary[part] = globals()[f"part_{part}"](check)
            except Exception as e:  # one broken part must not hide the others' numbers
                summary[part] = {"error": f"{type(e).__name__}: {e}"}
        summary[part]["seconds"] = round(time.time() - t0, 1)
        if _failed(part, summary[part]):
            failures.append(part)
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")  # partial results survive
    summary["failures"] = failures
    summary["ok"] = not failures
    summary["seconds"] = round(time.time() - check.t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


def _failed(part: str, result: dict) -> bool:
    if "error" in result:
        return True
    if part == "parity":
        return not result.get("ok")
    if part == "determinism":
        return not (result.get("reruns_bit_equal") and result.get("resume_bit_equal"))
    if part == "long_context":
        return any("error" in r for r in result["rows"])
    if part == "loop":
        return any("error" in v for k, v in result.items() if isinstance(v, dict))
    return False


if __name__ == "__main__":
    sys.exit(main())
