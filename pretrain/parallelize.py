"""Parallelism applied to a plain `model.Transformer` from outside (torchtitan style), one module each:

1. `tensor_parallel.py`: attention heads split over TP (column/row linears, sinks sliced);
2. `expert_parallel.py`: experts split over EP, their FFN width over TP, all-to-all dispatch;
3. `context_parallel.py`: sequences split over CP (key/value gather, sliding-window halo);
4. `recompute.py`: activation recompute per block (`train.activation_checkpoint`);
5. `data_parallel.py`: FSDP2 over DP (experts over EDP), or replicated weights with summed gradients.
The mesh (named dimensions edp, ep, cp, tp) is `mesh.py`.

`parallelize` returns a `ParallelPlan`: the parameters with a `ParamSpec` each (global shape, where the
local slice sits, which ranks hold copies). The checkpoint writes each distinct slice once and reads any
region back, so a run resumes under another layout; the grad norm counts each distinct element once;
`init_weights` fills every local slice with the numbers the whole model would have at that place, so
the initial model is the same for every layout, and no rank ever builds the whole model (build it on the
meta device first).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor

from model.model import Transformer, initial_values
from pretrain.data_parallel import apply_fsdp, fsdp_slice, sync_replicas
from pretrain.mesh import Mesh
from pretrain.recompute import apply_recompute


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """The rank's own data of a parameter, gradient or optimizer state (FSDP's are DTensors)."""
    return t._local_tensor if isinstance(t, DTensor) else t


@dataclass
class ParamSpec:
    name: str
    global_shape: tuple[int, ...]
    offsets: tuple[int, ...]  # where the local tensor sits in the global one
    local_shape: tuple[int, ...]
    expert: bool  # expert weights: split over EP, copies (or FSDP shards) over EDP
    tp_sharded: bool = False  # split over the TP group (else each TP rank holds the same values)
    fsdp: bool = False  # dim 0 further split by FSDP over DP (dense) or EDP (experts)
    replicas: int = 1  # ranks holding an identical copy of this slice

    def set_slice(self, dim: int, index: int, parts: int, *, tp_split: bool) -> None:
        """This rank holds part `index` of `parts` equal parts of global dimension `dim`."""
        size = self.global_shape[dim] // parts
        self.offsets = tuple(index * size if d == dim else o for d, o in enumerate(self.offsets))
        self.local_shape = tuple(size if d == dim else n for d, n in enumerate(self.local_shape))
        self.tp_sharded = self.tp_sharded or tp_split

    def shard_dim0(self, parts: int, index: int) -> None:
        start, rows = fsdp_slice(self.local_shape[0], parts, index)
        self.offsets = (self.offsets[0] + start, *self.offsets[1:])
        self.local_shape = (rows, *self.local_shape[1:])
        self.fsdp = True

    def owner(self, mesh: Mesh) -> bool:
        """Whether this rank writes the slice to a checkpoint (the first of its copies)."""
        if not all(self.local_shape):
            return False
        first_copy = True if self.fsdp else (mesh.edp_rank if self.expert else mesh.dp_rank) == mesh.cp_rank == 0
        return first_copy and (self.tp_sharded or mesh.tp_rank == 0)


class ParallelPlan:
    """The parallelised model's parameters with their specs; weight init, gradient sync, norm, clipping."""

    def __init__(self, model: nn.Module, mesh: Mesh, specs: dict[str, ParamSpec], *, fsdp: bool):
        self.model, self.mesh, self.specs, self.fsdp = model, mesh, specs, fsdp
        self.refresh()
        for name, spec in specs.items():
            got = tuple(local_tensor(self.params[name]).shape)
            if got != spec.local_shape:
                raise RuntimeError(f"parallelize: {name} holds {got}, its spec says {spec.local_shape}")
            if fsdp:  # distinct slices: dp (dense) or edp x ep (experts) = dp, times tp when TP-split
                spec.replicas = 1 if spec.tp_sharded else mesh.tp
            else:
                distinct = (mesh.ep if spec.expert else 1) * (mesh.tp if spec.tp_sharded else 1)
                spec.replicas = mesh.world // distinct

    def refresh(self) -> None:
        """Re-read the parameters (after `model.to_empty` / `.to`, which may replace them)."""
        self.params = dict(self.model.named_parameters())
        if set(self.params) != set(self.specs):
            raise RuntimeError(f"parallelize: parameter names changed: "
                               f"{sorted(set(self.params) ^ set(self.specs))[:4]}")

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Every local slice from `model.initial_values`: the same model whatever the layout."""
        for name, p in self.params.items():
            spec = self.specs[name]
            values = initial_values(self.model.init_rule(name), name, spec.global_shape, seed, spec.offsets,
                                    spec.local_shape)
            local_tensor(p).copy_(values)

    def sync_grads(self) -> None:
        """Replicated weights: sum gradients over their copies (FSDP reduce-scatters in the backward)."""
        if not self.fsdp:
            sync_replicas(self.params, {n: s.expert for n, s in self.specs.items()}, self.mesh)

    def grad_norm(self) -> torch.Tensor:
        """Global L2 norm of the gradient, each distinct element counted once (float64 accumulation)."""
        device = local_tensor(next(iter(self.params.values()))).device
        sq = torch.zeros((), dtype=torch.float64, device=device)
        for name, p in self.params.items():
            if p.grad is not None:
                g = local_tensor(p.grad)
                sq += torch.linalg.vector_norm(g, dtype=torch.float32).double() ** 2 / self.specs[name].replicas
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
                    g = local_tensor(p.grad)
                    g.mul_(coef.to(g.dtype))
        return norm


def parallelize(model: Transformer, mesh: Mesh, *, fsdp: bool = False, recompute: str = "none",
                param_dtype: torch.dtype | None = None) -> ParallelPlan:
    """Apply TP, EP (+expert TP), recompute and FSDP (or replication) to `model` in place. `model` may be
    on the meta device (then `model.to_empty(device=...)` and `plan.init_weights(seed)`), or hold the
    whole initialised model, the same on every rank (each rank keeps its slices)."""
    from pretrain.expert_parallel import apply_expert_parallel
    from pretrain.tensor_parallel import apply_tensor_parallel

    specs = {name: ParamSpec(name=name, global_shape=tuple(p.shape), offsets=(0,) * p.dim(),
                             local_shape=tuple(p.shape), expert=".moe.experts." in name)
             for name, p in model.named_parameters()}
    if mesh.tp > 1:
        apply_tensor_parallel(model, mesh, specs)
    if mesh.ep > 1 or mesh.tp > 1:
        apply_expert_parallel(model, mesh, specs)
    if mesh.cp > 1:
        from pretrain.context_parallel import apply_context_parallel
        apply_context_parallel(model, mesh)
    apply_recompute(model, recompute)
    if fsdp:
        apply_fsdp(model, mesh, param_dtype=param_dtype)
        for spec in specs.values():
            flat = mesh.submesh("edp_cp" if spec.expert else "dp_cp")
            spec.shard_dim0(flat.size(), flat.get_local_rank())
    return ParallelPlan(model, mesh, specs, fsdp=fsdp)
