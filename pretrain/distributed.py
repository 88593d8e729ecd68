"""Process-group start-up for torchrun, srun or a plain single process; backend and device chosen here.

- torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT.
- srun (one task per GPU, no torchrun) sets SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID; the job script
  exports MASTER_ADDR / MASTER_PORT. Exit codes then reach SLURM unchanged (torchrun turns them into 1).
- neither: one process, rank 0 of 1, on a free local port.
Backend: nccl when CUDA is available, else gloo (train.parallel.backend overrides).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env_int(*names: str) -> int | None:
    for n in names:
        if os.environ.get(n, "").strip():
            return int(os.environ[n])
    return None


def init_distributed(backend: str = "auto", timeout_s: int = 1800) -> Runtime:
    # megatron's TP linears overlap their gradient all-reduce and ask for this (read at forward time)
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "1")
    rank = _env_int("RANK")
    if rank is not None:
        world, local = _env_int("WORLD_SIZE") or 1, _env_int("LOCAL_RANK") or 0
    elif _env_int("SLURM_PROCID") is not None and _env_int("SLURM_NTASKS", "SLURM_NPROCS") not in (None, 1):
        rank, world, local = _env_int("SLURM_PROCID"), _env_int("SLURM_NTASKS", "SLURM_NPROCS"), _env_int("SLURM_LOCALID") or 0
        if not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
            raise RuntimeError("srun launch: export MASTER_ADDR and MASTER_PORT in the job script")
    else:
        rank, world, local = 0, 1, 0  # alone: a fresh local port (an inherited MASTER_PORT may be taken)
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(free_port())
    cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if cuda else "gloo"
    device = torch.device("cuda", local % torch.cuda.device_count()) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s),
                            device_id=device if backend == "nccl" else None)
    return Runtime(rank=rank, world=world, local_rank=local, device=device, backend=backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if `flag` is true on any (e.g. a signal that reached only some ranks)."""
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    if dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
