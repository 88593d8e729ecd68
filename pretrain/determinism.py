"""`train.deterministic`: the same config and seed give bit-identical losses and weights, on reruns and
after a resume.

On CPU (gloo) the trainer is deterministic anyway (every kernel it uses is; tests check it bit for bit),
so the flag costs nothing and defaults on. On CUDA it turns on, before the first CUDA call:
- `torch.use_deterministic_algorithms(True)`: ops with a deterministic variant use it (attention's
  backward, index/scatter accumulation in the MoE's token permutation and the embedding), ops without
  one raise instead of silently differing;
- `CUBLAS_WORKSPACE_CONFIG=:4096:8` (cuBLAS needs a fixed workspace to pick the same reductions);
- cuDNN deterministic, its autotuner (`benchmark`) off, and cuDNN's attention off (its backward is the
  op the warn-only mode named, GPU.md).
Measured on an H200 (GPU.md): the global deterministic mode cost 39 % of the real loop's tokens/s, so on
CUDA the default (None = auto) is off until `bench/gpu_check.sh` shows a setting within 15 %; set
`train.deterministic = true` for reproducible GPU runs. NCCL's reductions repeat bit for bit on the
same topology; across different node counts or layouts nothing is bit-exact (the sums regroup).
"""
from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"


def resolve(flag: bool | None, cuda: bool) -> bool:
    """The effective setting: the config's value, or for None (auto) on where it is free (CPU)."""
    return (not cuda) if flag is None else bool(flag)


def configure(enabled: bool, cuda: bool) -> None:
    """Apply the setting process-wide; call before the first CUDA kernel (cuBLAS reads its workspace
    setting when it creates its handle)."""
    if not enabled:
        return
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.enable_cudnn_sdp(False)
    torch.use_deterministic_algorithms(True)


def describe(enabled: bool, cuda: bool) -> str:
    if not cuda:
        return "deterministic (CPU: always bit-exact)"
    return ("deterministic kernels (bit-exact reruns and resume on the same GPUs)" if enabled else
            "NOT deterministic (train.deterministic = false: fastest kernels, reruns differ in the last bits)")
