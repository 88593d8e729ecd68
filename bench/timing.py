"""Timing shared by the torch benchmarks: implementations run in alternation, round after round, so
load from other processes on a shared machine hits each alike."""
from __future__ import annotations

import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps: dict[str, Callable[[], object]], device: torch.device, warmup: int, repeats: int,
                     before_timed_round: Callable[[], None] | None = None):
    """({name: wall seconds of each timed round}, {name: what its first call returned})."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    first: dict[str, object] = {}
    for r in range(warmup + repeats):
        if r >= warmup and before_timed_round is not None:
            before_timed_round()
        for name, fn in steps.items():
            sync(device)
            t0 = time.perf_counter()
            out = fn()
            sync(device)
            first.setdefault(name, out)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times, first
