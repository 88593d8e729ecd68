"""Tensor, expert and data parallelism applied to a plain `model.Transformer` from outside (torchtitan style).

One mesh (megatron-core `parallel_state`, order tp-ep-dp): world = tp x dp and dp = ep x edp.
- TP group: `tp` consecutive ranks; they see the same tokens and split heads and FFN width.
- DP group: the ranks with the same TP rank; each holds different samples.
- EP group: `ep` ranks of one DP group; the experts are split across them and tokens travel by all-to-all.
- EDP group: the ranks holding the same experts (dp / ep of them); expert gradients are summed there.

`parallelize(model, mesh)` applies, in this order:
1. Tensor parallel. Per attention layer q/k/v_proj become megatron-core `ColumnParallelLinear` (output
   split by heads, no gather) and o_proj a `RowParallelLinear` (input split, all-reduce, bias added once);
   `sinks` are sliced to the local heads. The model derives heads from tensor sizes, so nothing else
   changes. Needs n_heads and n_kv_heads divisible by tp (GQA groups stay whole on a rank).
2. Expert parallel (and expert tensor parallel = tp, as megatron's default). `moe.experts` is replaced by
   `ParallelExperts`, holding experts [ep_rank*E/ep, ...) with their FFN width split over the TP group
   (gate_up column-split, keeping gate/up pairs together; down row-split, all-reduce, bias added once).
   Tokens are dispatched and combined with autograd all-to-all over the EP group (dropless, uneven splits).
3. Data parallel. Returns a `ParallelPlan` whose `sync_grads()` all-reduces (sums) dense gradients over
   the DP group and expert gradients over the EDP group in flat buckets. Losses are normalised by the
   global token / sequence counts beforehand, so a sum is the gradient of the global mean.

Every parameter keeps its original name and gets a `ParamSpec` (global shape, offsets of the local
slice, which ranks hold copies): the checkpoint writes each distinct slice once and can reassemble any
layout; the grad norm counts each distinct element once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from model.model import Transformer
from model.moe import clamped_swiglu, expert_swiglu, grouped_matmul



# ---------------------------------------------------------------- mesh

@dataclass
class Mesh:
    world: int
    rank: int
    tp: int
    dp: int
    ep: int
    edp: int
    tp_rank: int
    dp_rank: int
    ep_rank: int
    edp_rank: int
    tp_group: object
    dp_group: object
    ep_group: object
    edp_group: object

    def describe(self) -> str:
        return f"world {self.world} = tp {self.tp} x dp {self.dp} (dp = ep {self.ep} x edp {self.edp})"


def init_mesh(tp: int, ep: int) -> Mesh:
    """megatron-core's process groups for tp and ep (expert TP = tp) on the initialised default group."""
    from megatron.core import parallel_state as ps

    world = dist.get_world_size()
    ps.destroy_model_parallel()
    ps.initialize_model_parallel(tensor_model_parallel_size=tp, expert_model_parallel_size=ep,
                                 expert_tensor_parallel_size=tp, create_gloo_process_groups=False)
    tp_group, ep_group = ps.get_tensor_model_parallel_group(), ps.get_expert_model_parallel_group()
    if dist.get_process_group_ranks(ps.get_expert_tensor_parallel_group()) != dist.get_process_group_ranks(tp_group):
        raise RuntimeError("megatron-core laid out the expert-TP group differently from the TP group")
    return Mesh(world=world, rank=dist.get_rank(), tp=tp, dp=world // tp, ep=ep, edp=world // tp // ep,
                tp_rank=ps.get_tensor_model_parallel_rank(), dp_rank=ps.get_data_parallel_rank(),
                ep_rank=ps.get_expert_model_parallel_rank(), edp_rank=ps.get_expert_data_parallel_rank(),
                tp_group=tp_group, dp_group=ps.get_data_parallel_group(), ep_group=ep_group,
                edp_group=ps.get_expert_data_parallel_group())


def destroy_mesh() -> None:
    from megatron.core import parallel_state as ps
    ps.destroy_model_parallel()


# ---------------------------------------------------------------- parameter bookkeeping

@dataclass
class ParamSpec:
    name: str
    global_shape: tuple[int, ...]
    offsets: tuple[int, ...]  # where the local tensor sits in the global one
    expert: bool  # expert weights: split over EP, copies on the EDP group
    tp_sharded: bool  # split over the TP group (else each TP rank holds the same values)
    replicas: int  # ranks holding an identical copy of this slice

    def owner(self, mesh: Mesh) -> bool:
        """Whether this rank writes the slice to a checkpoint (the first of its copies)."""
        first_copy = (mesh.edp_rank if self.expert else mesh.dp_rank) == 0
        return first_copy and (self.tp_sharded or mesh.tp_rank == 0)


def _set_slice(specs: dict, name: str, dim: int, index: int, parts: int, *, tp: bool) -> None:
    spec = specs[name]
    offsets = list(spec.offsets)
    offsets[dim] = index * (spec.global_shape[dim] // parts)
    spec.offsets = tuple(offsets)
    spec.tp_sharded = spec.tp_sharded or tp


# ---------------------------------------------------------------- 1. tensor parallel

def _megatron_config(tp: int):
    from megatron.core.model_parallel_config import ModelParallelConfig
    # weights are copied in from the initialised full model: no megatron init, plain CPU/GPU allocation
    return ModelParallelConfig(tensor_model_parallel_size=tp, use_cpu_initialization=True,
                               perform_initialization=False, gradient_accumulation_fusion=False,
                               params_dtype=torch.float32)


def _column(linear: nn.Linear, tp: int, rank: int):
    from megatron.core.tensor_parallel.layers import ColumnParallelLinear

    class ColumnLinear(ColumnParallelLinear):
        def forward(self, x):  # megatron returns (output, bias); the model wants the output
            return super().forward(x)[0]

    layer = ColumnLinear(linear.in_features, linear.out_features, config=_megatron_config(tp),
                         init_method=lambda w: None, bias=True, gather_output=False)
    with torch.no_grad():
        layer.weight.copy_(linear.weight.chunk(tp, dim=0)[rank])
        layer.bias.copy_(linear.bias.chunk(tp, dim=0)[rank])
    return layer


def _row(linear: nn.Linear, tp: int, rank: int):
    from megatron.core.tensor_parallel.layers import RowParallelLinear

    class RowLinear(RowParallelLinear):
        def forward(self, x):
            return super().forward(x)[0]

    layer = RowLinear(linear.in_features, linear.out_features, config=_megatron_config(tp),
                      init_method=lambda w: None, bias=True, input_is_parallel=True, skip_bias_add=False)
    with torch.no_grad():
        layer.weight.copy_(linear.weight.chunk(tp, dim=1)[rank])
        layer.bias.copy_(linear.bias)  # added after the all-reduce, once
    return layer


def apply_tensor_parallel(model: Transformer, mesh: Mesh, specs: dict[str, ParamSpec]) -> None:
    tp, r = mesh.tp, mesh.tp_rank
    args = model.args
    if args.n_heads % tp or args.n_kv_heads % tp:
        raise ValueError(f"train.parallel.tp={tp} must divide n_heads ({args.n_heads}) and n_kv_heads "
                         f"({args.n_kv_heads})")
    for i, layer in enumerate(model.layers):
        attn = layer.attention
        pre = f"layers.{i}.attention"
        for proj in ("q_proj", "k_proj", "v_proj"):
            setattr(attn, proj, _column(getattr(attn, proj), tp, r))
            _set_slice(specs, f"{pre}.{proj}.weight", 0, r, tp, tp=True)
            _set_slice(specs, f"{pre}.{proj}.bias", 0, r, tp, tp=True)
        attn.o_proj = _row(attn.o_proj, tp, r)
        _set_slice(specs, f"{pre}.o_proj.weight", 1, r, tp, tp=True)
        attn.sinks = nn.Parameter(attn.sinks.detach().chunk(tp)[r].clone())
        _set_slice(specs, f"{pre}.sinks", 0, r, tp, tp=True)
        attn.n_heads, attn.n_kv_heads = attn.n_heads // tp, attn.n_kv_heads // tp  # bookkeeping only


# ---------------------------------------------------------------- 2. expert parallel

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
        if self.tp == 1:  # the model's own expert math on the local experts
            return expert_swiglu(x_ND, counts_E, self.gate_up_proj, self.gate_up_proj_bias, self.down_proj,
                                 self.down_proj_bias, alpha=self.alpha, limit=self.limit)
        from megatron.core.tensor_parallel.mappings import (copy_to_tensor_model_parallel_region,
                                                            reduce_from_tensor_model_parallel_region)
        N = x_ND.shape[0]
        x_ND = copy_to_tensor_model_parallel_region(x_ND, self.tp_group)  # backward: all-reduce over TP
        h = grouped_matmul(x_ND, self.gate_up_proj, counts_E)
        h = h + self.gate_up_proj_bias.to(h.dtype).repeat_interleave(counts_E, dim=0, output_size=N)
        y = grouped_matmul(clamped_swiglu(h, alpha=self.alpha, limit=self.limit), self.down_proj, counts_E)
        y = reduce_from_tensor_model_parallel_region(y, self.tp_group)  # partial sums over F/tp
        return y + self.down_proj_bias.to(y.dtype).repeat_interleave(counts_E, dim=0, output_size=N)


def apply_expert_parallel(model: Transformer, mesh: Mesh, specs: dict[str, ParamSpec]) -> None:
    for i, layer in enumerate(model.layers):
        layer.moe.experts = ParallelExperts(layer.moe.experts, mesh)
        pre = f"layers.{i}.moe.experts"
        for name in ("gate_up_proj", "gate_up_proj_bias", "down_proj", "down_proj_bias"):
            _set_slice(specs, f"{pre}.{name}", 0, mesh.ep_rank, mesh.ep, tp=False)
        _set_slice(specs, f"{pre}.gate_up_proj", 2, mesh.tp_rank, mesh.tp, tp=mesh.tp > 1)
        _set_slice(specs, f"{pre}.gate_up_proj_bias", 1, mesh.tp_rank, mesh.tp, tp=mesh.tp > 1)
        _set_slice(specs, f"{pre}.down_proj", 1, mesh.tp_rank, mesh.tp, tp=mesh.tp > 1)


# ---------------------------------------------------------------- 3. data parallel + the plan

class ParallelPlan:
    """The parallelised model's parameters with their specs; gradient sync, norm and clipping."""

    BUCKET_ELEMENTS = 1 << 25  # flat all-reduce buckets of at most 128 MiB (float32)

    def __init__(self, model: nn.Module, mesh: Mesh, specs: dict[str, ParamSpec]):
        self.model, self.mesh = model, mesh
        self.params = dict(model.named_parameters())
        if set(self.params) != set(specs):
            raise RuntimeError(f"parallelize: parameter names changed: {sorted(set(self.params) ^ set(specs))[:4]}")
        self.specs = specs
        for name, spec in specs.items():
            if any(o + n > g for o, n, g in zip(spec.offsets, self.params[name].shape, spec.global_shape)):
                raise RuntimeError(f"parallelize: {name} slice {spec.offsets}+{tuple(self.params[name].shape)} "
                                   f"exceeds {spec.global_shape}")
            distinct = (mesh.ep if spec.expert else 1) * (mesh.tp if spec.tp_sharded else 1)
            spec.replicas = mesh.world // distinct

    def sync_grads(self) -> None:
        """Sum gradients over the ranks that hold copies: dense over DP, experts over EDP."""
        for expert, group, size in ((False, self.mesh.dp_group, self.mesh.dp),
                                    (True, self.mesh.edp_group, self.mesh.edp)):
            if size == 1:
                continue
            params = [p for n, p in self.params.items() if self.specs[n].expert == expert]
            for bucket in _buckets(params, self.BUCKET_ELEMENTS):
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in bucket]
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat, group=group)
                for p, g in zip(bucket, flat.split([g.numel() for g in grads])):
                    p.grad = g.view_as(p).clone() if p.grad is None else p.grad.copy_(g.view_as(p))

    def grad_norm(self) -> torch.Tensor:
        """Global L2 norm of the gradient, each distinct element counted once (float64 accumulation)."""
        device = next(iter(self.params.values())).device
        sq = torch.zeros((), dtype=torch.float64, device=device)
        for name, p in self.params.items():
            if p.grad is not None:
                sq += torch.linalg.vector_norm(p.grad, dtype=torch.float32).double() ** 2 / self.specs[name].replicas
        if self.mesh.world > 1:
            dist.all_reduce(sq)
        return sq.sqrt().float()

    def clip_grads(self, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_'s rule with the global norm; returns the norm before clipping."""
        norm = self.grad_norm()
        if max_norm > 0:
            coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
            for p in self.params.values():
                if p.grad is not None:
                    p.grad.mul_(coef.to(p.grad.dtype))
        return norm


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


def parallelize(model: Transformer, mesh: Mesh) -> ParallelPlan:
    """Apply 1. TP, 2. EP (+expert TP), 3. DP to `model`, which holds the full initialised weights (the
    same on every rank); each rank keeps its slices. Returns the plan the trainer steps with."""
    specs = {name: ParamSpec(name=name, global_shape=tuple(p.shape), offsets=(0,) * p.dim(),
                             expert=".moe.experts." in name, tp_sharded=False, replicas=mesh.world)
             for name, p in model.named_parameters()}
    if mesh.tp > 1:
        apply_tensor_parallel(model, mesh, specs)
    if mesh.ep > 1 or mesh.tp > 1:
        apply_expert_parallel(model, mesh, specs)
    return ParallelPlan(model, mesh, specs)
