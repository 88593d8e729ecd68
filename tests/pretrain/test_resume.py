"""A run stopped at step k (kill -9 after a checkpoint, or SIGTERM) and restarted with the same command
reproduces the uninterrupted run bit for bit: per-step losses, weights, optimizer state, HF export.
The two-phase run crosses its boundary (plain RoPE -> YaRN) sanely and resumes from the boundary."""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess

import pytest

from tests.pretrain.conftest import (losses, metrics, new_run, run_train, start_train, train_cmd, train_env,
                                     wait_for)
from tests.conftest import REPO

FINAL = 18


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_bit_identical(run, reference):
    assert losses(run) == losses(reference)  # exact float equality, every step once
    final = f"train/checkpoints/step-{FINAL}"
    for name in sorted(p.name for p in (reference / final).glob("*.safetensors")):
        assert digest(run / final / name) == digest(reference / final / name), name
    assert digest(run / "train/hf/model.safetensors") == digest(reference / "train/hf/model.safetensors")


def test_kill9_after_boundary_checkpoint_resumes_bit_exact(runs_root, two_phase_config, reference_run):
    run = new_run(runs_root, "kill9")
    args = ("--config", two_phase_config, "--run-dir", run)
    proc = start_train(1, *args, log=runs_root / "kill9.log")
    wait_for(run / "train/checkpoints/step-12/meta.json", proc)  # the phase boundary
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (run / "train/checkpoints" / f"step-{FINAL}").exists()
    out = run_train(1, *args)
    assert "resuming from" in out.stdout and "step-12" in out.stdout
    assert_bit_identical(run, reference_run)


def test_sigterm_checkpoints_exits_75_and_resumes_bit_exact(runs_root, two_phase_config, reference_run):
    run = new_run(runs_root, "sigterm")
    args = ("--config", two_phase_config, "--run-dir", run)
    proc = start_train(1, *args, log=runs_root / "sigterm.log")
    wait_for(run / "train/checkpoints/step-5/meta.json", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 75
    status = json.loads((run / "train/status.json").read_text())
    assert status["state"] == "preempted" and status["exit_code"] == 75 and status["signal"] == "SIGTERM"
    stopped = status["step"]
    assert (run / "train/checkpoints" / f"step-{stopped}/meta.json").is_file()
    assert stopped < FINAL
    run_train(1, *args)
    assert_bit_identical(run, reference_run)


@pytest.mark.slow
def test_sigusr1_through_launcher_with_torchrun_ep2(runs_root, two_phase_config):
    """SIGUSR1 to pretrain.launch reaches the torchrun workers (as SIGTERM: torchrun itself would die on
    USR1); torchrun reports 1, the launcher gives back 75; EP=2 resumes bit-exact."""
    whole = new_run(runs_root, "ep2-whole")
    run_train(2, "--config", two_phase_config, "--run-dir", whole, "parallel.ep=2")
    run = new_run(runs_root, "ep2-sigusr1")
    cmd = ["-m", "pretrain.launch", "--config", two_phase_config, "--run-dir", run, "parallel.ep=2"]
    proc = subprocess.Popen([train_cmd(1)[0], *map(str, cmd)], cwd=REPO, env=train_env(), start_new_session=True,
                            stdout=open(runs_root / "ep2-sigusr1.log", "w"), stderr=subprocess.STDOUT)
    wait_for(run / "train/checkpoints/step-5/meta.json", proc)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=120) == 75
    run_train(2, "--config", two_phase_config, "--run-dir", run, "parallel.ep=2")
    assert_bit_identical(run, whole)


def test_two_phase_boundary(reference_run):
    rows = metrics(reference_run)
    assert [r["step"] for r in rows] == list(range(1, FINAL + 1))
    assert {r["phase_name"] for r in rows[:12]} == {"base"} and {r["phase_name"] for r in rows[12:]} == {"long"}
    assert rows[12]["seq_len"] == 64 and rows[12]["lr"] == pytest.approx(1e-3)  # new schedule: warmup 1
    assert all(math.isfinite(r["loss"]) for r in rows)
    # the loss goes on sanely across the switch to YaRN and the longer context
    assert abs(rows[12]["loss"] - rows[11]["loss"]) < 0.5
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.3
    ckpt = reference_run / "train/checkpoints"
    boundary = json.loads((ckpt / "step-12/meta.json").read_text())
    assert boundary["phase"] == {"index": 0, "name": "base", "step": 12, "complete": True}
    assert boundary["rope"]["yarn_factor"] == 1.0 and boundary["data"]["consumed_samples"] == 96
    final = json.loads((ckpt / f"step-{FINAL}/meta.json").read_text())
    assert final["phase"]["name"] == "long" and final["rope"] == {"yarn_factor": 2.0, "original_context": 32}
    assert final["model_args"]["yarn_factor"] == 2.0
    hf_config = json.loads((reference_run / "train/hf/config.json").read_text())
    assert hf_config["rope_parameters"]["rope_type"] == "yarn"
    assert hf_config["rope_parameters"]["factor"] == 2.0
    assert hf_config["max_position_embeddings"] == 64


def test_changed_config_is_refused_on_resume(runs_root, two_phase_config, reference_run):
    run = runs_root / "changed"
    shutil.copytree(reference_run, run)
    proc = run_train(1, "--config", two_phase_config, "--run-dir", run, "seed=8", check=False)
    assert proc.returncode == 2
    assert "train.seed" in proc.stderr and "different config" in proc.stderr
