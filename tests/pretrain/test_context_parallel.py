"""Context parallel (`train.parallel.cp`): one step's loss, logits and every gradient equal the whole
model within 1e-5 for CP 2 and 4 (sliding layers by halo and by gather, full layers, sinks, YaRN), also
with TP, EP, FSDP and recompute; the trainer under CP follows the single-process losses; a 32k-token
step trains on CP=2; the bottom-right causal kernel path used on GPU keeps the mask semantics."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import REPO
from tests.pretrain.conftest import metrics, new_run, run_train, train_env, write_config
from tests.pretrain.test_parallel import QUIET, STEPS, assert_same_run

TOL = 1e-5
PROBES = {  # name: (processes, cp, tp, ep, fsdp, recompute, seq_len); tiny's window is 16
    "cp2-halo": (2, 2, 1, 1, 0, "none", 64),
    "cp4-halo": (4, 4, 1, 1, 0, "none", 64),
    "cp4-gather-full-recompute": (4, 4, 1, 1, 0, "full", 32),  # slices of 8 < window: keys gathered
    "cp2-tp2-selective": (4, 2, 2, 1, 0, "selective", 64),
    "cp2-ep2-fsdp-full": (4, 2, 1, 2, 1, "full", 64),
    "cp2-dp2-fsdp": (4, 2, 1, 1, 1, "none", 64),
}


@pytest.mark.parametrize("case", sorted(PROBES))
def test_context_parallel_step_equals_whole_model(case, tmp_path):
    from pretrain.distributed import free_port
    nproc, *args = PROBES[case]
    out = tmp_path / "probe.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
           "127.0.0.1", "--master-port", str(free_port()), "-m", "tests.pretrain.cp_probe", str(out),
           *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, env=train_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    reports = json.loads(out.read_text())
    assert len(reports) == nproc
    for r in reports:
        assert abs(r["loss"] - r["reference_loss"]) <= TOL, r
        assert r["logits_max_abs_diff"] <= TOL, r
        assert r["grad_max_rel_diff"] <= TOL, r
        assert r["expert_counts_equal"], r


@pytest.mark.parametrize("case", ["cp2", "cp4-ep2-fsdp"])
def test_trainer_with_context_parallel_matches_single_process(case, runs_root, two_phase_config, reference_run):
    nproc, overrides = {"cp2": (2, ["parallel.cp=2"]),
                        "cp4-ep2-fsdp": (4, ["parallel.cp=2", "parallel.ep=2", "parallel.fsdp=true"])}[case]
    run = new_run(runs_root, f"context-parallel-{case}")
    out = run_train(nproc, "--config", two_phase_config, "--run-dir", run, "--max-steps", STEPS, *overrides,
                    *QUIET, timeout=600)
    assert "x cp 2 x dp" in out.stdout
    assert_same_run(run, reference_run)


@pytest.mark.slow
def test_one_step_at_32k_tokens_on_cp2(runs_root):
    """The long-context path end to end on CPU: tiny preset, one sequence of 32,768 tokens split over two
    ranks, full recompute, YaRN x8 over 4k."""
    train = {"seed": 3, "model": {"preset": "tiny"}, "activation_checkpoint": "full",
             "phases": [{"name": "long", "steps": 1, "seq_len": 32768, "global_batch": 1, "lr": 1e-3,
                         "min_lr": 1e-4, "warmup_steps": 0, "yarn_factor": 8.0, "yarn_original_context": 4096}],
             "data": {"valid_fraction": 0.0}, "parallel": {"cp": 2}, "checkpoint": {"every": 0}}
    config = write_config(runs_root / "cp-32k.json", train)
    run = new_run(runs_root, "context-parallel-32k")
    run_train(2, "--config", config, "--run-dir", run, *QUIET, timeout=900)
    (record,) = metrics(run)
    assert record["seq_len"] == 32768 and record["tokens"] == 32768
    assert 5.0 < record["loss"] < 7.5 and record["grad_norm"] > 0  # ~ln(512) for a fresh model


def test_config_rejects_sequences_that_do_not_split(tmp_path):
    from common.config import ConfigError
    from pretrain.config import ParallelConfig, PhaseConfig, TrainConfig
    cfg = TrainConfig(phases=[PhaseConfig(seq_len=100, global_batch=2)], parallel=ParallelConfig(cp=3))
    with pytest.raises(ConfigError, match=r"phases\[0\].seq_len: 100 does not split into train.parallel.cp = 3"):
        cfg.check_world(3)
    with pytest.raises(ConfigError, match="tp x cp"):
        TrainConfig(parallel=ParallelConfig(cp=2)).check_world(3)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_lower_right_causal_keeps_the_mask_semantics(kv_heads):
    """The GPU path for a slice's full attention (torch's CausalBias, no mask tensor; CPU runs it by
    materialising the mask) against an explicit bottom-right causal mask, with GQA."""
    from model.attention import lower_right_causal
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 6, 8, generator=gen)
    k, v = torch.randn(2, kv_heads, 10, 8, generator=gen), torch.randn(2, kv_heads, 10, 8, generator=gen)
    got = lower_right_causal(q, k, v, 0.3)
    mask = torch.ones(6, 10, dtype=torch.bool).tril(diagonal=10 - 6)  # query i sees keys 0 .. 4 + i
    rep = 4 // kv_heads
    want = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1),
                                          attn_mask=mask, scale=0.3)
    assert torch.allclose(got, want, atol=1e-6)
