"""One optimizer step's forward/backward over this rank's micro-batches, and the losses it reports.

Normalisation makes the gradient independent of how the global batch is split: every micro-batch's
loss is its *sum* of token losses divided by the global number of loss tokens, plus the load-balancing
loss of its sequences divided by the global number of sequences. Summing the gradients over the
data-parallel ranks (FSDP's reduce-scatter, or `ParallelPlan.sync_grads` for replicas) then gives the
gradient of the global mean, whatever dp x micro-batch split produced it.
Context parallel: `dp_group` is then the dp x cp group (each CP rank's loss mask covers its slice of
the positions); the load-balancing losses are already those of whole sequences on every CP rank, so
each adds 1/cp of them (`cp`).
"""
from __future__ import annotations

import functools
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pretrain.data import MicroBatch


@dataclass
class StepResult:
    """The step's global numbers, left on the device until first read: the loop reads them after the
    optimizer step, so the host never waits for the GPU between forward, backward and update."""
    packed: torch.Tensor  # [lm sum, aux sum, expert slot counts...] summed over the group
    global_tokens: torch.Tensor  # loss tokens over the group (float64, >= 1)
    global_sequences: int
    aux_coef: float
    counts_shape: tuple[int, ...]

    @functools.cached_property
    def _host(self) -> list[float]:
        return self.packed[:2].tolist() + [float(self.global_tokens)]

    @property
    def lm_loss(self) -> float:
        return self._host[0] / self._host[2]

    @property
    def aux_loss(self) -> float:
        return self._host[1] / self.global_sequences

    @property
    def loss(self) -> float:  # lm_loss + coef * aux_loss (global means)
        return self.lm_loss + self.aux_coef * self.aux_loss

    @functools.cached_property
    def expert_counts(self) -> torch.Tensor:  # (L, E) int64, slots per expert over the global batch
        return self.packed[2:].round().long().view(self.counts_shape).cpu()


def forward_backward(model, micro_batches: list[MicroBatch], *, aux_coef: float,
                     aux_scope: str, global_sequences: int, dp_group, autocast_dtype, cp: int = 1,
                     loss_chunk_tokens: int = 0) -> StepResult:
    """Forward and backward every micro-batch (gradients accumulate); the returned numbers are global."""
    device = micro_batches[0].tokens.device
    local_tokens = torch.stack([mb.loss_mask.sum() for mb in micro_batches]).sum().double()
    global_tokens = local_tokens.clone()
    if dist.get_world_size(dp_group) > 1:
        dist.all_reduce(global_tokens, group=dp_group)
    global_tokens = global_tokens.clamp_min(1.0)  # stays on the device: no host sync before the forward
    token_divisor = global_tokens.float()  # exact (counts < 2**24), and the loss stays float32

    lm_sum = torch.zeros((), dtype=torch.float64, device=device)
    aux_sum = torch.zeros((), dtype=torch.float64, device=device)
    counts = None
    amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    for mb in micro_batches:
        B = mb.tokens.shape[0]
        with amp:
            token_loss = model(mb.tokens, positions_T=mb.positions, labels_BT=mb.labels,
                               loss_chunk_tokens=loss_chunk_tokens)
        lm = (token_loss * mb.loss_mask).sum()
        moe = model.moe_aux()
        if aux_scope == "sequence":
            aux = moe.aux_loss_per_sequence.sum()  # sum over this micro-batch's sequences
        else:  # the model's micro-batch loss, weighted by the micro-batch's share of sequences
            aux = moe.aux_loss * B
        aux = aux / cp if cp > 1 else aux
        loss = lm / token_divisor + aux_coef * aux / global_sequences
        loss.backward()
        lm_sum += lm.detach().double()
        aux_sum += aux.detach().double()
        step_counts = moe.tokens_per_expert
        counts = step_counts if counts is None else counts + step_counts

    packed = torch.cat([torch.stack([lm_sum, aux_sum]), counts.flatten().double()])
    if dist.get_world_size(dp_group) > 1:
        dist.all_reduce(packed, group=dp_group)
    return StepResult(packed=packed, global_tokens=global_tokens, global_sequences=global_sequences,
                      aux_coef=aux_coef, counts_shape=tuple(counts.shape))


@torch.no_grad()
def evaluate(model, micro_batches: list[MicroBatch], *, dp_group, autocast_dtype,
             loss_chunk_tokens: int = 0) -> tuple[float, int]:
    """(mean token loss, tokens) of the validation micro-batches over all data-parallel ranks."""
    device = micro_batches[0].tokens.device
    total = torch.zeros(2, dtype=torch.float64, device=device)
    amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    for mb in micro_batches:
        with amp:
            token_loss = model(mb.tokens, positions_T=mb.positions, labels_BT=mb.labels,
                               loss_chunk_tokens=loss_chunk_tokens)
        model.moe_aux()  # let go of the MoE statistics
        total[0] += (token_loss * mb.loss_mask).sum().double()
        total[1] += mb.loss_mask.sum().double()
    if dist.get_world_size(dp_group) > 1:
        dist.all_reduce(total, group=dp_group)
    return float(total[0] / total[1].clamp_min(1.0)), int(total[1])
