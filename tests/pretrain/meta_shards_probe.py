"""Run by test_plan.py in a fresh process: the real sharded parameters of one rank, built on the meta
device under a fake process group of the full world size (no memory, no peers), as JSON
{parameter: local shape}.

    python -m tests.pretrain.meta_shards_probe PRESET WORLD RANK TP EP FSDP [CP]
"""
from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore


def main(argv: list[str]) -> int:
    preset, world, rank, tp, ep, fsdp = argv[0], *map(int, argv[1:6])
    cp = int(argv[6]) if len(argv) > 6 else 1
    dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world)
    from model import Transformer, get_preset
    from pretrain.mesh import init_mesh
    from pretrain.parallelize import local_tensor, parallelize

    mesh = init_mesh(tp, ep, "cpu", cp=cp)
    with torch.device("meta"):
        model = Transformer(get_preset(preset))
    plan = parallelize(model, mesh, fsdp=bool(fsdp), recompute="full")
    print(json.dumps({name: list(local_tensor(p).shape) for name, p in plan.params.items()}))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
