"""Context parallelism (`train.parallel.cp = N`): each of N ranks holds 1/N of every sequence's positions
(contiguous slices: rank r holds [r*T/N, (r+1)*T/N)), applied to a plain `model.Transformer` from outside.

- The data: `shard_micro_batch` keeps the rank's slice of tokens, labels and loss mask, and passes the
  slice's positions to the model (RoPE and YaRN see the true positions).
- Full-attention layers: keys and values are all-gathered over the CP group; the slice's queries attend
  to keys 0 .. end of the slice with bottom-right causal alignment (`sink_attention(query_offset=)`).
  Backward: the key/value gradients are summed back to the rank that holds those positions.
- Sliding layers exchange only a halo: each rank sends its last `window` keys/values to the next rank
  (and the gradient back the same way), then runs the banded kernel over halo + slice.
  A slice shorter than the window gathers the keys like a full layer instead.
- Sinks are per head and need nothing: every query still sees its sink exactly once.
- MoE load-balancing losses are built from token sums, all-reduced over the CP group
  (`MoE.reduce_token_sums`), so they are the losses of the whole sequences; each CP rank adds 1/N of
  them to its loss (the gradient sum over the group counts them once).
Everything is exact: forward and gradients equal one rank holding the whole sequence up to float
summation order (tests/pretrain/test_context_parallel.py, CP 2 and 4, with TP, EP and FSDP).

Not done: load balancing of causal work (rank N-1's full layers attend over N times the keys of rank 0;
Megatron's zigzag split evens it out) and overlapping the key exchange with compute (ring attention).
"""
from __future__ import annotations

import functools

import torch
import torch.distributed as dist
import torch.nn.functional as F

from model.attention import sink_attention, sliding_sink_attention
from pretrain.data import MicroBatch
from pretrain.mesh import Mesh


class _GatherSequence(torch.autograd.Function):
    """Concatenate every CP rank's (B, K, Tc, D) along positions; backward: sum the gradient over the
    group and keep this rank's positions."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group, rank: int, size: int) -> torch.Tensor:
        ctx.group, ctx.rank, ctx.size, ctx.length = group, rank, size, x.shape[2]
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, dim=2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        if dist.get_backend(ctx.group) == "nccl":
            chunks = list(grad.chunk(ctx.size, dim=2))
            out = torch.empty_like(chunks[ctx.rank]).contiguous()
            dist.reduce_scatter(out, [c.contiguous() for c in chunks], group=ctx.group)
            return out, None, None, None
        dist.all_reduce(grad, group=ctx.group)  # gloo has no reduce-scatter
        return grad[:, :, ctx.rank * ctx.length:(ctx.rank + 1) * ctx.length].contiguous(), None, None, None


def _halo(tail: torch.Tensor, group, rank: int, size: int) -> torch.Tensor:
    """Send `tail` (B, K, W, D), this rank's last W positions, to the next CP rank and return the
    previous rank's (rank 0: an empty (B, K, 0, D)). One all-to-all with only the neighbour's split
    non-empty (gloo's point-to-point sends crashed at process exit now and then); its backward sends
    the halo's gradient back the same way."""
    from torch.distributed._functional_collectives import all_to_all_single_autograd
    W = tail.shape[2]
    rows = tail.permute(2, 0, 1, 3)  # positions first: the all-to-all splits dim 0
    send = [W if j == rank + 1 else 0 for j in range(size)]
    recv = [W if j == rank - 1 else 0 for j in range(size)]
    got = all_to_all_single_autograd(rows[:sum(send)].contiguous(), recv, send, group)
    return got.permute(1, 2, 0, 3)


def attend(attn, group, rank: int, size: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`Attention.attend` for a CP slice: q (B, H, Tc, Dh), k/v (B, K, Tc, Dh) of positions [r*Tc, (r+1)*Tc)."""
    Tc, Dh = q.shape[2], q.shape[3]
    window = attn.sliding_window
    kv = torch.cat([k, v], dim=-1)
    if window is not None and Tc >= window:
        halo = _halo(kv[:, :, -window:], group, rank, size)
        context = torch.cat([halo, kv], dim=2)
    else:
        context = _GatherSequence.apply(kv, group, rank, size)[:, :, :(rank + 1) * Tc]
        if window is not None:  # keep the last `window` keys before the slice
            context = context[:, :, max(0, rank * Tc - window):]
    before = context.shape[2] - Tc  # positions of keys ahead of the slice's first query
    k_ctx, v_ctx = context[..., :Dh], context[..., Dh:]
    if window is None:
        return sink_attention(q, k_ctx, v_ctx, attn.sinks, mask_TS=None, query_offset=before)
    # zero query rows for the halo positions line the slice up with its keys; their outputs are dropped
    out = sliding_sink_attention(F.pad(q, (0, 0, before, 0)), k_ctx, v_ctx, attn.sinks, window=window)
    return out[:, :, before:]


class _SumOverGroup(torch.autograd.Function):
    """all-reduce(sum) with an all-reduce(sum) backward: every rank's loss term reaches every part."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def apply_context_parallel(model, mesh: Mesh) -> None:
    """Replace every attention layer's `attend` and sum every MoE's token sums over the CP group."""
    group, rank, size = mesh.cp_group, mesh.cp_rank, mesh.cp
    for block in model.layers:
        block.attention.attend = functools.partial(attend, block.attention, group, rank, size)
        block.moe.reduce_token_sums = functools.partial(_SumOverGroup.apply, group=group)


def shard_micro_batch(mb: MicroBatch, mesh: Mesh) -> MicroBatch:
    """This CP rank's slice of every sequence, with its positions."""
    T = mb.tokens.shape[1]
    if T % mesh.cp:
        raise ValueError(f"sequence length {T} does not split into train.parallel.cp = {mesh.cp} slices")
    Tc = T // mesh.cp
    part = slice(mesh.cp_rank * Tc, (mesh.cp_rank + 1) * Tc)
    return MicroBatch(tokens=mb.tokens[:, part].contiguous(), labels=mb.labels[:, part].contiguous(),
                      loss_mask=mb.loss_mask[:, part].contiguous(),
                      positions=torch.arange(part.start, part.stop, device=mb.tokens.device))
