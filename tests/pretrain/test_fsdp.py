"""FSDP and activation recompute: recompute changes no bit; kill -9 under FSDP resumes bit for bit; a
checkpoint written by 4 FSDP ranks loads onto 2 (and 2 onto 4) as identical tensors, weights and AdamW
state, and training continues on the single-process losses."""
from __future__ import annotations

import os
import signal

import pytest
import torch

from pretrain.checkpoint import ShardIndex
from tests.pretrain.conftest import (losses, new_run, run_train, start_train, train_cmd, train_env,
                                     wait_for)
from tests.pretrain.test_parallel import QUIET
from tests.pretrain.test_resume import FINAL, digest
from tests.conftest import REPO

FSDP = "parallel.fsdp=true"


def all_tensors(checkpoint, kind: str) -> dict[str, torch.Tensor]:
    with ShardIndex(checkpoint, kind) as idx:
        return {k: idx.read(k, (0,) * len(idx.global_shapes[k]), idx.global_shapes[k]) for k in idx.pieces}


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_recompute_changes_no_bit(mode, runs_root, two_phase_config, reference_run):
    run = new_run(runs_root, f"recompute-{mode}")
    out = run_train(1, "--config", two_phase_config, "--run-dir", run, "--max-steps", 10,
                    f'activation_checkpoint="{mode}"', *QUIET)
    assert f"recompute {mode}" in out.stdout
    assert losses(run) == losses(reference_run)[:10]
    step = run / "train/checkpoints/step-10"
    for kind in ("model", "optim"):
        got, want = all_tensors(step, kind), all_tensors(reference_run / "train/checkpoints/step-10", kind)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got), kind


@pytest.mark.parametrize("mode", ["none", "full", "selective"])
def test_no_layer_keeps_a_graph_after_the_backward(mode):
    """The MoE losses are taken by moe_aux(); a block recomputed in the backward stores none, so no
    recomputed graph (its attention's saved tensors and all) lives on into the next step."""
    from model import Transformer, get_preset
    from pretrain.recompute import apply_recompute
    torch.manual_seed(0)
    model = Transformer(get_preset("tiny"))
    model.init_weights()
    apply_recompute(model, mode)
    logits = model(torch.randint(0, model.args.vocab_size, (2, 32)))
    aux = model.moe_aux()
    (logits.float().square().mean() + aux.aux_loss_per_sequence.sum()).backward()
    held = [i for i, layer in enumerate(model.layers)
            if layer.moe.aux_loss is not None or layer.moe.aux_loss_per_sequence is not None]
    assert held == [], f"layers {held} still hold a loss (and its autograd graph) after the backward"
    assert aux.tokens_per_expert.sum() == 2 * 32 * model.args.top_k * model.args.n_layers


@pytest.mark.slow
def test_kill9_with_fsdp_resumes_bit_exact(runs_root, two_phase_config):
    args = ("--config", two_phase_config, FSDP, "parallel.ep=2", 'activation_checkpoint="full"')
    whole = new_run(runs_root, "fsdp-whole")
    run_train(2, *args, "--run-dir", whole)
    run = new_run(runs_root, "fsdp-kill9")
    proc = start_train(2, *args, "--run-dir", run, log=runs_root / "fsdp-kill9.log")
    wait_for(run / "train/checkpoints/step-5/meta.json", proc)
    done_at_kill = len((run / "train/metrics.jsonl").read_text().splitlines())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done_at_kill < FINAL and not (run / "train/summary.json").exists()  # the kill landed mid-run
    out = run_train(2, *args, "--run-dir", run)
    assert "resuming from" in out.stdout
    assert losses(run) == losses(whole)
    final = f"train/checkpoints/step-{FINAL}"
    for name in sorted(p.name for p in (whole / final).glob("*.safetensors")):
        assert digest(run / final / name) == digest(whole / final / name), name


def probe(nproc: int, out_root, *args) -> None:
    import subprocess
    cmd = train_cmd(nproc, *args)
    at = cmd.index("pretrain.train")
    cmd[at:at + 1] = ["tests.pretrain.reshard_probe", str(out_root)]
    proc = subprocess.run(cmd, cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]


RESHARD = {  # name: (processes, overrides) when saved, (processes, overrides) when resumed
    "fsdp4-to-fsdp2": ((4, [FSDP]), (2, [FSDP])),
    "fsdp2-to-fsdp4": ((2, [FSDP]), (4, [FSDP])),
    "tp2-to-fsdp2-ep2": ((2, ["parallel.tp=2"]), (2, [FSDP, "parallel.ep=2"])),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(RESHARD))
def test_checkpoint_reshards_exactly_and_continues(case, runs_root, two_phase_config, reference_run):
    from tests.pretrain.test_parallel import assert_same_run
    (saved, saved_args), (resumed, resumed_args) = RESHARD[case]
    run = new_run(runs_root, f"reshard-{case}")
    args = ("--config", two_phase_config, "--run-dir", run, *QUIET)
    run_train(saved, *args, *saved_args, "--max-steps", 5)
    written = run / "train/checkpoints/step-5"
    assert len(list(written.glob("model-r*.safetensors"))) >= 2  # every rank wrote its own slices
    probe(resumed, run / "probe", *args, *resumed_args)
    for kind in ("model", "optim"):
        got, want = all_tensors(run / "probe/step-5", kind), all_tensors(written, kind)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got), kind
    out = run_train(resumed, *args, *resumed_args, "--max-steps", 10)
    assert "differs from" in out.stderr and "resharded exactly" in out.stderr
    assert_same_run(run, reference_run)
