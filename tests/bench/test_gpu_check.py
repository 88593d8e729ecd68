"""bench/gpu_check.sh: without CUDA it fails loudly (exit 2, a JSON summary with ok false as the last
line and in OUT/gpu_check.json); with --cpu-selftest every part runs on CPU with tiny shapes and the
summary has each part's numbers (parity with HF, step vs HF, loop cost of train.deterministic, bit-equal
reruns and SIGTERM resume, long-context rows)."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO, cli_env

pytestmark = pytest.mark.xdist_group("gpu_check")


def run_check(*args, timeout=600) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), *map(str, args)], cwd=REPO,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)
    return proc, json.loads(proc.stdout.strip().splitlines()[-1])


def test_without_cuda_it_fails_loudly(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc, summary = run_check("--out", tmp_path)
    assert proc.returncode == 2 and summary["ok"] is False and "CUDA is not available" in summary["error"]
    assert "FAILED" in proc.stderr
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == summary


@pytest.mark.slow
def test_cpu_selftest_runs_every_part(tmp_path):
    proc, summary = run_check("--out", tmp_path, "--cpu-selftest", timeout=900)
    assert proc.returncode == 0, (summary, proc.stderr[-3000:])
    assert summary["ok"] is True and summary["failures"] == []
    assert summary["parity"]["ok"] and summary["parity"]["max_abs_diff"] <= 1e-4
    assert summary["step"]["ours_tokens_per_s"] > 0 and summary["step"]["hf_tokens_per_s"] > 0
    loop = summary["loop"]
    assert loop["deterministic_true"]["steps"] >= 12 and loop["deterministic_cost"] is not None
    det = summary["determinism"]
    assert det["reruns_bit_equal"] and det["resume_bit_equal"] and det["sigterm_exit"] == 75
    assert [r["seq"] for r in summary["long_context"]["rows"]] == [64, 128]
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == summary


def test_a_failed_part_makes_the_summary_fail():
    from bench.gpu_check import _failed
    assert _failed("determinism", {"reruns_bit_equal": True, "resume_bit_equal": False})
    assert _failed("parity", {"ok": False, "max_abs_diff": 0.1})
    assert _failed("long_context", {"rows": [{"seq": 4096, "tokens_per_s": 1.0}, {"seq": 131072, "error": "rc 1"}]})
    assert not _failed("step", {"ours_tokens_per_s": 1.0})
