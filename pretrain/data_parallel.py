"""Data parallelism: FSDP2 (`train.parallel.fsdp = true`) or replicated weights with summed gradients.

FSDP (PyTorch's `fully_shard`, DTensor parameters sharded on dim 0):
- each transformer block's experts over the EDP dimension (the ranks that hold the same experts), then
  the block's dense and attention parameters over DP (both times CP: context-parallel ranks hold the
  same weights), then embeddings, final norm and output (root);
- per-block groups: parameters are all-gathered before a block runs and freed after it, the next
  block's all-gather prefetched; gradients are reduce-scattered in the backward pass;
- gradients are *summed* (the losses are normalised by global counts, `pretrain/step.py`);
- on GPU with bf16: parameters all-gathered in bf16 for compute, fp32 sharded master weights, fp32
  gradient reduction and AdamW state (`MixedPrecisionPolicy`); on CPU everything stays float32.

Replicate (`fsdp = false`): every DP rank holds the whole (TP/EP-local) weights; `sync_replicas` sums
dense gradients over DP and expert gradients over EDP in flat buckets.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from pretrain.mesh import Mesh

BUCKET_ELEMENTS = 1 << 25  # flat all-reduce buckets of at most 128 MiB (float32)


def apply_fsdp(model: nn.Module, mesh: Mesh, *, param_dtype: torch.dtype | None) -> list:
    """Shard `model` (already TP/EP-sliced) with FSDP2; returns the FSDP modules, innermost first."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    # CP ranks hold the same weights and different tokens: they shard and reduce like DP ranks
    dp_mesh, edp_mesh = mesh.submesh("dp_cp"), mesh.submesh("edp_cp")
    modules, blocks = [], list(model.layers)
    for block in blocks:
        fully_shard(block.moe.experts, mesh=edp_mesh, mp_policy=mp)
        fully_shard(block, mesh=dp_mesh, mp_policy=mp)
        modules += [block.moe.experts, block]
    fully_shard(model, mesh=dp_mesh, mp_policy=mp)
    modules.append(model)
    for module in modules:
        module.set_gradient_divide_factor(1.0)  # sum, not mean
        if hasattr(module, "set_force_sum_reduction_for_comms"):  # torch >= 2.12; gloo has no PREMUL_SUM
            module.set_force_sum_reduction_for_comms(True)
    for before, after in zip(blocks, blocks[1:]):
        before.set_modules_to_forward_prefetch([after])
        after.set_modules_to_backward_prefetch([before])
    return modules


def fsdp_slice(length: int, parts: int, index: int) -> tuple[int, int]:
    """(start, rows) of FSDP shard `index` of a dim-0 length `length` over `parts` ranks (torch.chunk)."""
    per = -(-length // parts)
    start = min(index * per, length)
    return start, max(0, min(per, length - start))


def sync_replicas(params: dict[str, torch.Tensor], expert: dict[str, bool], mesh: Mesh) -> None:
    """Sum gradients over the ranks that hold copies: dense over DP x CP, experts over EDP x CP."""
    for is_expert, group, size in ((False, mesh.dp_cp_group, mesh.dp * mesh.cp),
                                   (True, mesh.edp_cp_group, mesh.edp * mesh.cp)):
        if size == 1:
            continue
        chosen = [p for n, p in params.items() if expert[n] == is_expert]
        for bucket in _buckets(chosen, BUCKET_ELEMENTS):
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in bucket]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat, group=group)
            for p, g in zip(bucket, flat.split([g.numel() for g in grads])):
                p.grad = g.view_as(p).clone() if p.grad is None else p.grad.copy_(g.view_as(p))


def _buckets(params: list[torch.Tensor], limit: int):
    bucket, size = [], 0
    for p in params:
        if bucket and size + p.numel() > limit:
            yield bucket
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel()
    if bucket:
        yield bucket
