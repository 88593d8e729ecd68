"""Checkpoint files: RNG states as JSON, slices reassembled for any layout, atomic publish, keep-last-K,
and nothing a user receives is a pickle."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pretrain import checkpoint as ckpt
from pretrain.config import OptimConfig
from pretrain.optim import build_optimizer
from pretrain.mesh import init_mesh
from pretrain.parallelize import parallelize
from tests.model.conftest import tiny_model


def test_rng_states_round_trip_through_json():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = json.loads(json.dumps(ckpt.rng_state()))  # JSON only
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(state)
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_slices_reassemble_into_any_region(tmp_path):
    full = torch.arange(4 * 6 * 2, dtype=torch.float32).view(4, 6, 2)
    pieces = {"r0": ((0, 0, 0), full[:2, :3]), "r1": ((0, 3, 0), full[:2, 3:]), "r2": ((2, 0, 0), full[2:])}
    for rank, (offsets, t) in pieces.items():
        save_file({"w": t.contiguous()}, str(tmp_path / f"model-{rank}.safetensors"),
                  metadata={ckpt.SHARDS_KEY: json.dumps({"w": {"global_shape": [4, 6, 2], "offsets": list(offsets)}})})
    with ckpt.ShardIndex(tmp_path, "model") as idx:
        assert torch.equal(idx.read("w", (0, 0, 0), (4, 6, 2)), full)
        assert torch.equal(idx.read("w", (1, 2, 0), (2, 3, 2)), full[1:3, 2:5])  # across three files
        with pytest.raises(ValueError, match="global shape"):
            idx.read("w", (0, 0, 0), (4, 6, 2), global_shape=(4, 6, 3))
        with pytest.raises(KeyError, match="no tensor 'v'"):
            idx.read("v", (0,), (1,))
    (tmp_path / "model-r2.safetensors").unlink()
    with ckpt.ShardIndex(tmp_path, "model") as idx, pytest.raises(ValueError, match="cover"):
        idx.read("w", (0, 0, 0), (4, 6, 2))


def _plan_and_optimizer(seed):
    model = tiny_model(seed)
    plan = parallelize(model, init_mesh(1, 1))
    opt = build_optimizer(plan.params, OptimConfig())
    loss = model(torch.randint(0, 512, (2, 16), generator=torch.Generator().manual_seed(seed))).square().mean()
    loss.backward()
    opt.step()
    return plan, opt


def test_save_load_prune_atomic(tmp_path, gloo_world):
    plan, opt = _plan_and_optimizer(0)
    root = tmp_path / "checkpoints"
    (root / ".step-7.tmp").mkdir(parents=True)  # a save that was killed
    ckpt.remove_stale(root)
    assert not (root / ".step-7.tmp").exists()
    meta = {"optimizer_step": 1, "model_args": {}}
    for step in (1, 2, 3):
        ckpt.save(root, step, plan=plan, optimizer=opt, meta=meta, keep_last=2)
    assert [s for s, _ in ckpt.list_checkpoints(root)] == [2, 3]
    assert not list(root.glob(".*"))
    (root / "step-4").mkdir()  # no meta.json: not a checkpoint
    assert ckpt.latest_checkpoint(root) == root / "step-3"

    other, other_opt = _plan_and_optimizer(1)
    ckpt.load(root / "step-3", plan=other, optimizer=other_opt, restore_rng=True)
    for name, p in plan.params.items():
        assert torch.equal(p, other.params[name]), name
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt.state[p][key], other_opt.state[other.params[name]][key])
        assert float(other_opt.state[other.params[name]]["step"]) == 1.0


def test_nothing_in_a_run_directory_is_a_pickle(reference_run):
    allowed = {".json", ".jsonl", ".safetensors", ".png", ".bin", ".idx", ".npy", ".txt"}
    for path in (reference_run / "train").rglob("*"):  # what the trainer writes (the data stages: tests/security)
        if not path.is_file():
            continue
        head = path.read_bytes()[:4]
        assert not head.startswith(b"\x80"), f"{path} looks like a pickle"
        assert not head.startswith(b"PK"), f"{path} looks like a torch.save zip"
        assert path.suffix in allowed or "tfevents" in path.name, path
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # plain arrays (megatron's index cache)
