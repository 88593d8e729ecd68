"""Per-step metrics (`train/metrics.jsonl` + TensorBoard), progress output, and the numbers behind MFU.

MFU = model FLOPs per second / the matmul peak measured on the same machine at startup (each rank
times a square matmul at the same moment, so on a shared CPU the ranks' peaks add up to the machine's).
Model FLOPs count matmuls only, forward + backward = 3 x forward, with top-k active experts.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import orjson
import torch

from common.io import atomic_write_bytes
from common.progress import bar, progress_enabled


def model_flops_per_token(args, seq_len: int) -> float:
    """Training FLOPs per token: 3 x forward; forward = 2 x active matmul weights (attention projections,
    router, top_k experts, unembedding) + attention scores and values, 2 x 2 x heads x head_dim x keys seen
    per query (causal mean; sliding layers see at most the window)."""
    D, H, K, Dh, F = args.dim, args.n_heads, args.n_kv_heads, args.head_dim, args.ffn_dim
    per_layer = D * (H + 2 * K) * Dh + H * Dh * D + D * args.n_experts + args.top_k * 3 * D * F
    forward = 2.0 * (args.n_layers * per_layer + D * args.vocab_size)
    for layer_type in args.layer_types:
        window = args.sliding_window if layer_type == "sliding_attention" else seq_len
        mean_keys = sum(min(t + 1, window) for t in range(seq_len)) / seq_len
        forward += 2 * 2 * H * Dh * mean_keys
    return 3.0 * forward


def param_counts(args) -> dict[str, int]:
    """Total and active-per-token parameters of the full (unsharded) model, embeddings included."""
    from model.info import param_counts as counts_by_part
    c = counts_by_part(args)
    return {"total": c["total"], "active": c["active"] + c["embedding"]}


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, seconds: float = 0.6) -> float:
    """Best FLOP/s of a square matmul over a few short trials (size 1024 on CPU, 8192 on GPU)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(3):
            a @ b
        sync()
        best = max(best, 3 * 2 * n ** 3 / (time.perf_counter() - t0))
    return best


class MetricsLog:
    """Rank 0's writer of metrics.jsonl (one line per step) and TensorBoard events. On resume, lines
    after the checkpoint's step (written by the interrupted run) are dropped, and TensorBoard purges
    them, so the files read like one uninterrupted run."""

    def __init__(self, train_dir: Path, *, resume_step: int, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.path = Path(train_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(resume_step)
        self.file = open(self.path, "ab")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(Path(train_dir) / "tensorboard"),
                                        purge_step=resume_step + 1 if resume_step else None)

    def _truncate_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_bytes().splitlines():
            try:
                if orjson.loads(line)["step"] <= step:
                    keep.append(line)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                break  # a torn last line from a killed run
        atomic_write_bytes(self.path, b"".join(line + b"\n" for line in keep))

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self.file.flush()
        if self.writer is not None:
            step = record["step"]
            for key in ("loss", "lm_loss", "aux_loss", "lr", "grad_norm", "tokens_per_s", "mfu",
                        "expert_imbalance"):
                if record.get(key) is not None and math.isfinite(record[key]):
                    self.writer.add_scalar(f"train/{key}", record[key], step)
            for layer, row in enumerate(record.get("expert_load", [])):  # one scalar per layer, not per expert
                mean = sum(row) / len(row) or 1
                self.writer.add_scalar(f"expert_load/layer{layer}_max_over_mean", max(row) / mean, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


class Progress:
    """A tqdm bar on a terminal; otherwise a log line every `every` steps."""

    def __init__(self, total: int, initial: int, every: int, enabled: bool):
        self.every, self.enabled = every, enabled
        self.bar = bar(total=total, desc="train", unit="step", initial=initial) if enabled and progress_enabled() else None

    def update(self, record: dict) -> None:
        if not self.enabled:
            return
        text = (f"step {record['step']} [{record['phase_name']}] loss {record['loss']:.4f} "
                f"lr {record['lr']:.2e} gnorm {record['grad_norm']:.3f} tok/s {record['tokens_per_s']:.0f} "
                f"mfu {100 * record['mfu']:.2f}%"
                + (f" eval {record['eval_loss']:.4f} (ppl {record['eval_ppl']:.1f})" if "eval_loss" in record else ""))
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text.split("] ", 1)[1])
        elif record["step"] % self.every == 0 or "eval_loss" in record:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
