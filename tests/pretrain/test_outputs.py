"""What a run leaves behind: metrics.jsonl, TensorBoard events, plots, summary, HF export (opened by
model.hf.load and transformers), and the pipeline stage's summary."""
from __future__ import annotations

import json
import math

import pytest
import torch

from common import config as cfgmod
from model import get_preset
from pretrain.metrics import model_flops_per_token
from tests.conftest import run_cli
from tests.pretrain.conftest import metrics, new_run, run_train


def test_metrics_line_per_step(reference_run):
    rows = metrics(reference_run)
    for r in rows:
        for key in ("step", "phase", "phase_name", "loss", "lm_loss", "aux_loss", "lr", "grad_norm", "tokens",
                    "tokens_per_s", "mfu", "expert_load"):
            assert key in r, key
        assert 0 < r["mfu"] < 1 and r["tokens_per_s"] > 0
        load = torch.tensor(r["expert_load"])
        assert load.shape == (4, 8)  # tiny: layers x experts
        tokens = 8 * 32 if r["phase"] == 0 else 4 * 64
        assert (load.sum(dim=1) == tokens * 2).all()  # top-2: every token fills two expert slots
    assert list(reference_run.joinpath("train/tensorboard").glob("events.out.tfevents.*"))


def test_plots_and_summary(reference_run, tmp_path):
    plots = reference_run / "train/plots"
    for name in ("loss", "lr", "throughput", "mfu", "expert_load"):
        assert (plots / f"{name}.png").stat().st_size > 5000
    summary = json.loads((reference_run / "train/summary.json").read_text())
    assert summary["state"] == "completed" and summary["steps"] == 18
    assert summary["final_loss"] < summary["first_loss"]
    out = run_cli("-m", "pretrain.plots", reference_run)
    assert "plots" in out.stdout


def test_hf_export_opens_in_model_hf_and_transformers(reference_run, tmp_path):
    import transformers
    from model import hf

    ours = hf.load(reference_run / "train/hf")
    theirs = transformers.GptOssForCausalLM.from_pretrained(reference_run / "train/hf").eval()
    tokens = torch.randint(0, 512, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(tokens) - theirs(tokens).logits).abs().max() < 1e-4
    # any checkpoint, on request, from the files alone
    run_cli("-m", "pretrain.export", reference_run, "--step", "12", "--out", tmp_path / "hf12")
    early = hf.load(tmp_path / "hf12")
    assert early.args.yarn_factor == 1.0 and not torch.equal(early.output.weight, ours.output.weight)


def test_hf_export_streams_layer_by_layer_into_shards(reference_run, tmp_path):
    """A checkpoint of any size exports one layer at a time: with a small shard limit every layer lands in
    its own file (the writer never held more), the index lists every tensor, and transformers opens it
    with the same logits as the single-file export."""
    import transformers
    from model import hf
    from pretrain.checkpoint import export_hf_from

    out = export_hf_from(reference_run / "train/checkpoints/step-18", tmp_path / "sharded", max_shard_bytes=1)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    files = sorted(p.name for p in out.glob("model-*.safetensors"))
    layers = hf.load(reference_run / "train/hf").args.n_layers
    assert len(files) == layers + 3 == len(set(index["weight_map"].values()))  # embeddings, layers, norm, head
    single = hf.load(reference_run / "train/hf").state_dict()
    sharded = hf.load(out).state_dict()
    assert single.keys() == sharded.keys() and all(torch.equal(single[k], sharded[k]) for k in single)
    theirs = transformers.GptOssForCausalLM.from_pretrained(out).eval()
    tokens = torch.randint(0, 512, (1, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (hf.load(out)(tokens) - theirs(tokens).logits).abs().max() < 1e-4


def test_flops_per_token_by_hand():
    args = get_preset("tiny")
    D, V, L = 128, 512, 4
    matmul = L * (D * (4 + 2 * 2) * 32 + 4 * 32 * D + D * 8 + 2 * 3 * D * 128) + D * V
    # seq 32: sliding layers (window 16) see 1..16 keys, full layers 1..32
    sliding = sum(min(t + 1, 16) for t in range(32)) / 32
    full = sum(t + 1 for t in range(32)) / 32
    attention = 2 * (4 * 32 * 2 * (sliding + full))
    assert model_flops_per_token(args, 32) == pytest.approx(3 * (2 * matmul + 2 * attention))


def test_pipeline_stage_trains_with_two_processes(runs_root):
    from pipeline.context import RunContext
    from pretrain.pipeline_stage import run_train_stage

    run_dir = new_run(runs_root, "stage")
    cfg = cfgmod.load(preset="tiny", overrides=[
        "train.phases=[{name='a', steps=3, seq_len=32, global_batch=4, warmup_steps=1}]",
        "train.parallel.nproc=2", "train.log.plots=false", "train.log.tensorboard=false"])
    summary = run_train_stage(RunContext(run_dir=run_dir, config=cfg))
    assert summary["state"] == "completed" and summary["steps"] == 3 and summary["final_loss"] > 0
    assert json.loads((run_dir / "train/summary.json").read_text()) == summary
    assert (run_dir / "train/hf/config.json").is_file()
    assert json.loads((run_dir / "train/checkpoints/step-3/meta.json").read_text())["mesh"]["dp"] == 2


def test_validation_loss_in_metrics_plots_and_summary(reference_run):
    rows = [json.loads(x) for x in (reference_run / "train/metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in rows if "eval_loss" in r}
    assert sorted(evals) == [12, 18]  # eval.every 20 > 18 steps: the phase ends only
    for r in evals.values():
        assert math.isfinite(r["eval_loss"]) and r["eval_ppl"] == pytest.approx(math.exp(r["eval_loss"]))
        assert r["eval_tokens"] > 0
    summary = json.loads((reference_run / "train/summary.json").read_text())
    assert summary["final_eval_loss"] == evals[18]["eval_loss"]
    assert summary["best_eval_step"] in evals


def test_no_validation_when_nothing_is_held_out(runs_root):
    run = new_run(runs_root, "no-valid")
    run_train(1, "--preset", "tiny", "--run-dir", run, "--max-steps", 2, "data.valid_fraction=0", "log.plots=false",
              'checkpoint.export_hf="none"')
    assert not any("eval_loss" in json.loads(x) for x in (run / "train/metrics.jsonl").read_text().splitlines())


def test_run_summary_reports_what_the_run_files_hold(runs_root, capsys):
    """The summary a run ends with (README: documents in, removed per reason, tokens, loss, validation,
    report and plots, a greedy sample), every number equal to the file it comes from."""
    from pipeline.summary import print_summary
    from tests.pretrain.conftest import pipeline_run
    import shutil
    run = runs_root / "summary"
    if not run.exists():
        shutil.copytree(pipeline_run("filtered"), run, ignore=shutil.ignore_patterns("logs"))
        run_train(1, "--preset", "tiny", "--run-dir", run, "--max-steps", 4, "checkpoint.export_hf=\"final\"")
    out = print_summary(run)
    text = capsys.readouterr().out
    for stage in ("ingest", "dedupe", "cbrn", "tokenize"):
        st = json.loads((run / stage / "stats.json").read_text())
        line = next(x for x in text.splitlines() if x.startswith(stage + " "))
        assert line.split()[1:3] == [str(st["in"]), str(st["kept"])], line
        for reason, n in {**st["removed"], **st["quarantined"]}.items():
            assert f"{reason} {n}" in line, (reason, line)
    manifest = json.loads((run / "tokenize/manifest.json").read_text())
    train = json.loads((run / "train/summary.json").read_text())
    assert out["tokens"] == manifest["tokens"] and f"{manifest['tokens']:,} in" in text and "CBRN-filtered" in text
    assert out["final_loss"] == train["final_loss"] and f"{train['steps']} steps" in text
    assert f"loss {train['final_eval_loss']:.3f}" in text and "held-out" in text
    assert str(run / "train/plots") in text and isinstance(out["sample"], str) and out["sample"]
