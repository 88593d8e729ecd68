"""AdamW with decoupled weight decay on matrices only, and the per-phase warmup + cosine schedule.

The learning rate is a pure function of the global step (no scheduler state), so a resumed run sets
exactly the rate the uninterrupted run had, and `--max-steps` cannot bend the schedule.
"""
from __future__ import annotations

import math

import torch

from pretrain.config import OptimConfig, PhaseConfig


def no_decay(name: str) -> bool:
    """Biases, norm gains and attention sinks are not decayed (shrinking them has no regularising use)."""
    return name.endswith("bias") or name.endswith("sinks") or "norm" in name


def build_optimizer(named_params: dict[str, torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.AdamW:
    decay = [p for n, p in named_params.items() if not no_decay(n)]
    rest = [p for n, p in named_params.items() if no_decay(n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    # foreach=False: the per-tensor loop, whose float results do not depend on how tensors are grouped
    return torch.optim.AdamW(groups, lr=0.0, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=False)


def phase_of(phases: list[PhaseConfig], step: int) -> tuple[int, int]:
    """(phase index, step within the phase) of global step `step` (0-based); past the end: the last phase."""
    start = 0
    for i, p in enumerate(phases):
        if step < start + p.steps:
            return i, step - start
        start += p.steps
    return len(phases) - 1, step - (start - phases[-1].steps)


def phase_start(phases: list[PhaseConfig], index: int) -> int:
    return sum(p.steps for p in phases[:index])


def lr_at(phase: PhaseConfig, phase_step: int) -> float:
    """Linear warmup from 0 over `warmup_steps`, then cosine from `lr` to `min_lr` at the phase's end."""
    if phase_step < phase.warmup_steps:
        return phase.lr * (phase_step + 1) / phase.warmup_steps
    decay_steps = max(1, phase.steps - phase.warmup_steps)
    progress = min(1.0, (phase_step - phase.warmup_steps) / decay_steps)
    return phase.min_lr + 0.5 * (phase.lr - phase.min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
