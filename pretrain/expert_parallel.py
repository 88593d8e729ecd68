"""Expert parallelism (and expert tensor parallelism = tp, megatron's default), applied from outside.

`moe.experts` is replaced by `ParallelExperts`, holding experts [ep_rank*E/ep, ...) with their FFN width
split over the TP group (gate_up column-split, keeping gate/up pairs together; down row-split,
all-reduce, bias added once). Tokens are dispatched and combined with autograd all-to-all over the EP
group (dropless, uneven splits). The contract it keeps is the one in `model/moe.py`.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from model.model import Transformer
from model.moe import expert_swiglu
from pretrain.mesh import Mesh


class ParallelExperts(nn.Module):
    """Drop-in for `GroupedExperts` (contract in model/moe.py): holds E/ep experts with FFN width F/tp,
    takes the rows of *all* E experts for this rank's tokens and returns their outputs in the same order."""

    def __init__(self, experts: nn.Module, mesh: Mesh):
        super().__init__()
        E = experts.gate_up_proj.shape[0]
        F2 = experts.gate_up_proj.shape[2]
        if E % mesh.ep:
            raise ValueError(f"train.parallel.ep={mesh.ep} must divide n_experts ({E})")
        if (F2 // 2) % mesh.tp:
            raise ValueError(f"train.parallel.tp={mesh.tp} must divide the expert ffn_dim ({F2 // 2})")
        self.ep, self.tp, self.n_local = mesh.ep, mesh.tp, E // mesh.ep
        self.ep_group, self.tp_group = mesh.ep_group, mesh.tp_group
        self.alpha, self.limit = experts.alpha, experts.limit
        lo, hi = mesh.ep_rank * self.n_local, (mesh.ep_rank + 1) * self.n_local
        r, tp = mesh.tp_rank, mesh.tp
        take = lambda t, dim: nn.Parameter(t.detach()[lo:hi].chunk(tp, dim=dim)[r].clone())  # noqa: E731
        # contiguous column chunks of the interleaved gate/up layout hold whole (gate j, up j) pairs
        self.gate_up_proj = take(experts.gate_up_proj, 2)
        self.gate_up_proj_bias = take(experts.gate_up_proj_bias, 1)
        self.down_proj = take(experts.down_proj, 1)
        self.down_proj_bias = nn.Parameter(experts.down_proj_bias.detach()[lo:hi].clone())

    def forward(self, x_sorted_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        if self.ep == 1:
            return self._local(x_sorted_ND, counts_E)
        x_local, local_counts, combine = self._dispatch(x_sorted_ND, counts_E)
        return combine(self._local(x_local, local_counts))

    def _dispatch(self, x_ND: torch.Tensor, counts_E: torch.Tensor):
        from torch.distributed._functional_collectives import all_to_all_single_autograd

        send_counts = counts_E.view(self.ep, self.n_local)  # row d: rows for the experts on EP rank d
        recv_counts = torch.empty_like(send_counts)  # row s: rows from EP rank s for my experts
        dist.all_to_all_single(recv_counts, send_counts, group=self.ep_group)
        in_splits, out_splits = send_counts.sum(1).tolist(), recv_counts.sum(1).tolist()
        x_recv = all_to_all_single_autograd(x_ND, out_splits, in_splits, self.ep_group)
        # received rows are grouped by source, then expert; regroup by expert (stable: source order kept)
        expert_of_row = torch.arange(self.n_local, device=x_ND.device).repeat(self.ep).repeat_interleave(
            recv_counts.flatten(), output_size=sum(out_splits))
        order = torch.argsort(expert_of_row, stable=True)

        def combine(y_local: torch.Tensor) -> torch.Tensor:
            y_recv = y_local[torch.argsort(order)]
            return all_to_all_single_autograd(y_recv, in_splits, out_splits, self.ep_group)

        return x_recv[order], recv_counts.sum(0), combine

    def _local(self, x_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        """The model's own expert math on the local experts; with TP the FFN width is split, so the input
        gradient and the down projection's partial sums are all-reduced over the TP group."""
        reduce = None
        if self.tp > 1:
            from megatron.core.tensor_parallel.mappings import (copy_to_tensor_model_parallel_region,
                                                                reduce_from_tensor_model_parallel_region)
            x_ND = copy_to_tensor_model_parallel_region(x_ND, self.tp_group)
            reduce = lambda y: reduce_from_tensor_model_parallel_region(y, self.tp_group)  # noqa: E731
        return expert_swiglu(x_ND, counts_E, self.gate_up_proj, self.gate_up_proj_bias, self.down_proj,
                             self.down_proj_bias, alpha=self.alpha, limit=self.limit, reduce_partial=reduce)


def apply_expert_parallel(model: Transformer, mesh: Mesh, specs: dict) -> None:
    """Replace every layer's experts by `ParallelExperts`; `specs[name].set_slice` records the slices."""
    for i, layer in enumerate(model.layers):
        layer.moe.experts = ParallelExperts(layer.moe.experts, mesh)
        pre = f"layers.{i}.moe.experts"
        for name in ("gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"):
            specs[f"{pre}.{name}"].set_slice(0, mesh.ep_rank, mesh.ep, tp_split=False)
        specs[f"{pre}.gate_up_proj"].set_slice(2, mesh.tp_rank, mesh.tp, tp_split=mesh.tp > 1)
        specs[f"{pre}.gate_up_proj_bias"].set_slice(1, mesh.tp_rank, mesh.tp, tp_split=mesh.tp > 1)
        specs[f"{pre}.down_proj"].set_slice(1, mesh.tp_rank, mesh.tp, tp_split=mesh.tp > 1)
