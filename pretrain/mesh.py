"""The device mesh: one `torch.distributed.DeviceMesh` with named dimensions, and the groups each
parallelism uses. Ranks are laid out (edp, ep, tp), tp fastest, so a TP group is `tp` consecutive
ranks (one node's fast links) and megatron-core's order tp-ep-dp holds:

    world = dp x tp          dp = edp x ep (the flattened "dp" dimension)
    tp   ranks that see the same tokens and split heads and FFN width
    dp   ranks with the same TP rank; each holds different samples (FSDP shards dense weights here)
    ep   `ep` ranks of one DP group; experts are split across them, tokens travel by all-to-all
    edp  ranks holding the same experts; FSDP shards expert weights here (torchtitan's dp_shard_mod_ep)

A new parallelism (pipeline, context) adds a dimension here and a module of its own in `pretrain/`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

DIMS = ("edp", "ep", "tp")


@dataclass
class Mesh:
    device_mesh: DeviceMesh  # dimensions DIMS
    dp_mesh: DeviceMesh  # ("edp", "ep") flattened: the data-parallel dimension
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

    @property
    def tp_group(self):
        return self.device_mesh.get_group("tp")

    @property
    def ep_group(self):
        return self.device_mesh.get_group("ep")

    @property
    def edp_group(self):
        return self.device_mesh.get_group("edp")

    @property
    def dp_group(self):
        return self.dp_mesh.get_group()

    def submesh(self, name: str) -> DeviceMesh:
        return self.dp_mesh if name == "dp" else self.device_mesh[name]

    def describe(self) -> str:
        return f"world {self.world} = tp {self.tp} x dp {self.dp} (dp = ep {self.ep} x edp {self.edp})"

    def as_dict(self) -> dict:
        return {"world": self.world, "tp": self.tp, "dp": self.dp, "ep": self.ep}


def init_mesh(tp: int, ep: int, device_type: str = "cpu") -> Mesh:
    """The mesh over the initialised default process group (its world size must be a multiple of tp x ep)."""
    world = dist.get_world_size()
    if world % tp or (world // tp) % ep:
        raise ValueError(f"world {world} does not split into tp {tp} x ep {ep} x edp")
    dp = world // tp
    mesh = init_device_mesh(device_type, (dp // ep, ep, tp), mesh_dim_names=DIMS)
    dp_mesh = mesh["edp", "ep"]._flatten("dp")
    edp_rank, ep_rank, tp_rank = mesh.get_coordinate()
    return Mesh(device_mesh=mesh, dp_mesh=dp_mesh, world=world, rank=dist.get_rank(), tp=tp, dp=dp, ep=ep,
                edp=dp // ep, tp_rank=tp_rank, dp_rank=dp_mesh.get_local_rank(), ep_rank=ep_rank,
                edp_rank=edp_rank)
