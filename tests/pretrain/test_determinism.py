"""`train.deterministic`: auto resolves on for CPU and off for CUDA, true/false force it; the flag turns
on torch's deterministic algorithms (and on CUDA the cuBLAS workspace and cuDNN settings); the trainer
says what it chose; changing it does not block a resume."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pretrain import determinism
from pretrain.config import config_digest
from tests.conftest import REPO


@pytest.mark.parametrize("flag,cuda,want", [(None, False, True), (None, True, False), (True, True, True),
                                            (False, False, False), (True, False, True)])
def test_resolve(flag, cuda, want):
    assert determinism.resolve(flag, cuda) is want


@pytest.mark.parametrize("enabled,cuda", [(True, False), (True, True), (False, True)])
def test_configure_sets_what_it_says(enabled, cuda):
    """In a fresh process (the settings are process-wide); CUDA's knobs are plain settings, so they can be
    checked without a GPU."""
    code = ("import os, torch\nfrom pretrain import determinism\n"
            f"determinism.configure({enabled}, {cuda})\n"
            "print(torch.are_deterministic_algorithms_enabled(), os.environ.get('CUBLAS_WORKSPACE_CONFIG'),"
            " torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,"
            " torch.backends.cuda.cudnn_sdp_enabled())")
    env = {k: v for k, v in __import__("os").environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if not enabled:
        assert out == ["False", "None", "False", "False", "True"]
    elif cuda:
        assert out == ["True", ":4096:8", "True", "False", "False"]
    else:
        assert out[0] == "True" and out[1] == "None"  # CPU needs nothing else


def test_flag_is_resumable_and_reported(runs_root, two_phase_config):
    from tests.pretrain.conftest import new_run, run_train
    from tests.pretrain.test_parallel import QUIET
    base = {"seed": 1, "phases": []}
    assert config_digest({**base, "deterministic": True}) == config_digest({**base, "deterministic": False})
    run = new_run(runs_root, "deterministic-flag")
    out = run_train(1, "--config", two_phase_config, "--run-dir", run, "--max-steps", 2, "deterministic=true",
                    *QUIET)
    assert "deterministic (CPU: always bit-exact)" in out.stdout
    out = run_train(1, "--config", two_phase_config, "--run-dir", run, "--max-steps", 3, "deterministic=false",
                    *QUIET)
    assert "resuming from" in out.stdout
