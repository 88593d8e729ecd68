"""The device mesh: one `torch.distributed.DeviceMesh` with named dimensions, and the groups each
parallelism uses. Ranks are laid out (edp, ep, cp, tp), tp fastest, so a TP group is `tp` consecutive
ranks (one node's fast links) and megatron-core's order tp-cp-ep-dp holds:

    world = dp x cp x tp     dp = edp x ep (the flattened "dp" dimension)
    tp   ranks that see the same tokens and split heads and FFN width
    cp   ranks that see the same sequences and split their positions (context parallel)
    dp   ranks with the same TP and CP rank; each holds different samples
    ep   `ep` ranks of one DP group; experts are split across them, tokens travel by all-to-all
    edp  ranks holding the same experts (torchtitan's dp_shard_mod_ep)

Weights are the same on every CP rank, so gradients are summed, and FSDP shards, over dp x cp
("dp_cp") for dense weights and edp x cp ("edp_cp") for experts.
A new parallelism (pipeline) adds a dimension here and a module of its own in `pretrain/`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

DIMS = ("edp", "ep", "cp", "tp")


@dataclass
class Mesh:
    device_mesh: DeviceMesh  # dimensions DIMS
    flat: dict[str, DeviceMesh]  # "dp" = (edp, ep), "dp_cp" = (edp, ep, cp), "edp_cp" = (edp, cp)
    world: int
    rank: int
    tp: int
    dp: int
    ep: int
    edp: int
    cp: int
    tp_rank: int
    dp_rank: int
    ep_rank: int
    edp_rank: int
    cp_rank: int

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
    def cp_group(self):
        return self.device_mesh.get_group("cp")

    @property
    def dp_group(self):
        return self.flat["dp"].get_group()

    @property
    def dp_cp_group(self):
        """The ranks whose gradients add up to the dense weights' gradient (and whose losses to the loss)."""
        return self.flat["dp_cp"].get_group()

    @property
    def edp_cp_group(self):
        return self.flat["edp_cp"].get_group()

    def submesh(self, name: str) -> DeviceMesh:
        return self.flat[name] if name in self.flat else self.device_mesh[name]

    def describe(self) -> str:
        cp = f" x cp {self.cp}" if self.cp > 1 else ""
        return f"world {self.world} = tp {self.tp}{cp} x dp {self.dp} (dp = ep {self.ep} x edp {self.edp})"

    def as_dict(self) -> dict:
        out = {"world": self.world, "tp": self.tp, "dp": self.dp, "ep": self.ep}
        return {**out, "cp": self.cp} if self.cp > 1 else out  # checkpoints from before CP compare equal


def init_mesh(tp: int, ep: int, device_type: str = "cpu", cp: int = 1) -> Mesh:
    """The mesh over the initialised default process group (its world size must be a multiple of
    tp x cp x ep)."""
    world = dist.get_world_size()
    if world % (tp * cp) or (world // (tp * cp)) % ep:
        raise ValueError(f"world {world} does not split into tp {tp} x cp {cp} x ep {ep} x edp")
    dp = world // (tp * cp)
    mesh = init_device_mesh(device_type, (dp // ep, ep, cp, tp), mesh_dim_names=DIMS)
    flat = {"dp": mesh["edp", "ep"]._flatten("dp"), "dp_cp": mesh["edp", "ep", "cp"]._flatten("dp_cp"),
            "edp_cp": mesh["edp", "cp"]._flatten("edp_cp")}
    edp_rank, ep_rank, cp_rank, tp_rank = mesh.get_coordinate()
    return Mesh(device_mesh=mesh, flat=flat, world=world, rank=dist.get_rank(), tp=tp, dp=dp, ep=ep,
                edp=dp // ep, cp=cp, tp_rank=tp_rank, dp_rank=flat["dp"].get_local_rank(), ep_rank=ep_rank,
                edp_rank=edp_rank, cp_rank=cp_rank)
