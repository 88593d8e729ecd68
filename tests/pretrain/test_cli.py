"""The trainer's command line: refusal of unfiltered data, --allow-unfiltered, bad configs, --max-steps."""
from __future__ import annotations

import json

from tests.pretrain.conftest import losses, metrics, new_run, run_train


def test_unfiltered_shards_are_refused(runs_root):
    run = new_run(runs_root, "unfiltered", filtered=False)
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, check=False)
    assert proc.returncode == 2
    assert "CBRN filter" in proc.stderr and "--allow-unfiltered" in proc.stderr
    assert not (run / "train/checkpoints").exists()


def test_allow_unfiltered_trains_and_warns_loudly(runs_root):
    run = new_run(runs_root, "unfiltered-allowed", filtered=False)
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "--allow-unfiltered", "--max-steps", 2,
                     "log.plots=false", "checkpoint.export_hf=\"none\"")
    assert "TRAINING ON DATA THAT DID NOT PASS THE CBRN FILTER" in proc.stderr
    assert "UNFILTERED" in proc.stdout
    assert [s for s, _ in losses(run)] == [1, 2]
    status = json.loads((run / "train/status.json").read_text())
    assert status["state"] == "stopped"  # --max-steps before the end of the schedule
    assert (run / "train/checkpoints/step-2/meta.json").is_file()


def test_bad_config_exits_2_naming_the_key(runs_root):
    run = new_run(runs_root, "badconfig")
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "optim.grad_clipp=1.0", check=False)
    assert proc.returncode == 2 and "grad_clipp" in proc.stderr and "grad_clip" in proc.stderr
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "parallel.tp=2", check=False)  # 1 process
    assert proc.returncode == 2 and "train.parallel.tp" in proc.stderr


def test_a_forged_filter_record_exits_2_naming_the_field(runs_root):
    run = new_run(runs_root, "forged")
    manifest = run / "tokenize" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["filter"] = {"stage": "cbrn", "note": "trust me"}
    manifest.write_text(json.dumps(m))
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "--max-steps", 1, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "filter.lexicon_sha256: missing" in proc.stderr and "--allow-unfiltered" in proc.stderr
    assert not (run / "train/checkpoints").exists()
    # allowed explicitly: trains, warns with the reason, and the run records that its data was unfiltered
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "--max-steps", 1, "--allow-unfiltered",
                     "log.plots=false", "checkpoint.export_hf=\"none\"")
    assert "DID NOT PASS THE CBRN FILTER" in proc.stderr and "filter.lexicon_sha256: missing" in proc.stderr
    assert all(r["unfiltered_data"] for r in metrics(run))
    assert json.loads((run / "train/summary.json").read_text())["unfiltered_data"] is True


def test_real_filtered_data_trains_and_says_so(runs_root):
    run = new_run(runs_root, "filtered-real")
    proc = run_train(1, "--preset", "tiny", "--run-dir", run, "--max-steps", 1, "log.plots=false",
                     "checkpoint.export_hf=\"none\"")
    assert "CBRN-filtered: record matches" in proc.stdout and "DID NOT PASS" not in proc.stderr
    assert not any(r["unfiltered_data"] for r in metrics(run))
    assert json.loads((run / "train/summary.json").read_text())["unfiltered_data"] is False
