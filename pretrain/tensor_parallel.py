"""Tensor parallelism for attention, applied to a plain `model.Transformer` from outside.

Per attention layer q/k/v_proj become `ColumnLinear` (output split by heads, no gather) and o_proj a
`RowLinear` (input split, all-reduce, bias added once); `sinks` are sliced to the local heads. The
model derives heads from tensor sizes, so nothing else changes. The collectives are megatron-core's
autograd mappings (copy: identity forward, all-reduce backward; reduce: the reverse). The layers stay
`nn.Linear` with the original parameter names, so checkpoints, FSDP and recompute see plain modules.
Needs n_heads and n_kv_heads divisible by tp (GQA groups stay whole on a rank). The experts' TP
(expert tensor parallel = tp, megatron's default) is in `expert_parallel.py`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.model import Transformer
from pretrain.mesh import Mesh


class ColumnLinear(nn.Linear):
    """y_local = x @ W_local^T + b_local; the input gradient is all-reduced over the TP group."""

    def __init__(self, in_features: int, out_features: int, group, *, device=None):
        super().__init__(in_features, out_features, bias=True, device=device)
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from megatron.core.tensor_parallel.mappings import copy_to_tensor_model_parallel_region
        return F.linear(copy_to_tensor_model_parallel_region(x, self.group), self.weight, self.bias)


class RowLinear(nn.Linear):
    """y = all_reduce(x_local @ W_local^T) + b: the input is split along features; the bias is added once."""

    def __init__(self, in_features: int, out_features: int, group, *, device=None):
        super().__init__(in_features, out_features, bias=True, device=device)
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from megatron.core.tensor_parallel.mappings import reduce_from_tensor_model_parallel_region
        y = reduce_from_tensor_model_parallel_region(F.linear(x, self.weight), self.group)
        return y + self.bias.to(y.dtype)


def _split(linear: nn.Linear, cls, dim: int, tp: int, rank: int, group) -> nn.Linear:
    shape = list(linear.weight.shape)  # (out, in)
    shape[dim] //= tp
    layer = cls(shape[1], shape[0], group, device=linear.weight.device)
    with torch.no_grad():
        layer.weight.copy_(linear.weight.chunk(tp, dim=dim)[rank])
        layer.bias.copy_(linear.bias.chunk(tp)[rank] if dim == 0 else linear.bias)
    return layer


def apply_tensor_parallel(model: Transformer, mesh: Mesh, specs: dict) -> None:
    """Slice attention over the TP group; `specs[name].set_slice` records where each slice sits."""
    tp, r, group = mesh.tp, mesh.tp_rank, mesh.tp_group
    args = model.args
    if args.n_heads % tp or args.n_kv_heads % tp:
        raise ValueError(f"train.parallel.tp={tp} must divide n_heads ({args.n_heads}) and n_kv_heads "
                         f"({args.n_kv_heads})")
    for i, layer in enumerate(model.layers):
        attn = layer.attention
        pre = f"layers.{i}.attention"
        for proj in ("q_proj", "k_proj", "v_proj"):
            setattr(attn, proj, _split(getattr(attn, proj), ColumnLinear, 0, tp, r, group))
            specs[f"{pre}.{proj}.weight"].set_slice(0, r, tp, tp_split=True)
            specs[f"{pre}.{proj}.bias"].set_slice(0, r, tp, tp_split=True)
        attn.o_proj = _split(attn.o_proj, RowLinear, 1, tp, r, group)
        specs[f"{pre}.o_proj.weight"].set_slice(1, r, tp, tp_split=True)
        attn.sinks = nn.Parameter(attn.sinks.detach().chunk(tp)[r].clone())
        specs[f"{pre}.sinks"].set_slice(0, r, tp, tp_split=True)
        attn.n_heads, attn.n_kv_heads = attn.n_heads // tp, attn.n_kv_heads // tp  # bookkeeping only
