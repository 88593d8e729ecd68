"""`python -m slurm submit ... --dry-run` writes every script (stage drivers, every step's array script,
the training job) under RUN_DIR/slurm/ with no sbatch or scontrol on PATH and submits nothing; the
preflight checks refuse a submission that cannot work, with the reason, before anything is written."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, cli_env
from tests.pipeline.helpers import write_jsonl


def _env_without_slurm() -> dict:
    """PATH with nothing but the interpreter's directory: no sbatch, no scontrol."""
    env = cli_env()
    env["PATH"] = os.path.dirname(sys.executable)
    return env


def slurm_cli(*args, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "slurm", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert not check or proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_dry_run_writes_every_script_without_a_controller(tmp_path):
    import shutil
    env = _env_without_slurm()
    assert shutil.which("sbatch", path=env["PATH"]) is None
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "A short note about the weather."}])
    run = tmp_path / "run"
    proc = slurm_cli("submit", "--preset", "tiny", "--run-dir", run, "--input", src, "--dry-run",
                     "--stages", "ingest,dedupe,cbrn,tokenize,train", env=env)
    assert "nothing was submitted" in proc.stderr
    scripts = sorted(p.name for p in (run / "slurm").glob("*.sbatch"))
    for stage in ("ingest", "dedupe", "cbrn", "tokenize"):
        assert f"{stage}-driver.sbatch" in scripts, scripts
    assert "train.sbatch" in scripts
    assert "ingest-read-0.sbatch" in scripts  # ingest's tasks are known now: one per input file
    arrays = [s for s in scripts if not s.endswith("driver.sbatch") and s != "train.sbatch"]
    assert {s.split("-")[0] for s in arrays} >= {"ingest", "dedupe", "cbrn", "tokenize"}, arrays
    later = (run / "slurm" / next(s for s in arrays if s.startswith("dedupe"))).read_text()
    assert "decided when the stage starts" in later and "--array=0%" in later
    assert not (run / "slurm" / "jobs.json").exists()  # nothing was submitted
    for line in proc.stdout.splitlines():
        assert os.path.isfile(line.split("\t")[1]), line


def test_preflight_refuses_with_the_reason(tmp_path):
    env = cli_env()
    run = tmp_path / "run"
    proc = slurm_cli("submit", "--preset", "tiny", "--run-dir", run, "--input", tmp_path / "missing-*.jsonl",
                     "--dry-run", env=env, check=False)
    assert proc.returncode == 2 and "no file matches" in proc.stderr and not run.exists()
    proc = slurm_cli("submit", "--preset", "tiny", "--run-dir", run, "--stages", "train", "--dry-run", env=env,
                     check=False)
    assert proc.returncode == 2 and "needs tokenized data" in proc.stderr and not run.exists()
    proc = slurm_cli("submit", "--preset", "tiny", "--run-dir", run, "--stages", "tokenize,train", "--dry-run",
                     "--set", "slurm.train_gpus_per_node=8", "--set", "slurm.train_procs_per_node=4", env=env,
                     check=False)
    assert proc.returncode == 2 and "one process per GPU" in proc.stderr and not run.exists()
    assert "submit" in slurm_cli("--help", env=env).stdout


def test_declared_step_names_are_the_real_steps(tmp_path):
    """What a dry run renders before a stage's input exists must be the steps the stage really runs."""
    from pipeline.context import load_run_context
    from pipeline.stages import data_stages, get_stage
    from tests.pipeline.helpers import run_stages
    src = write_jsonl(tmp_path / "docs.jsonl",
                      [{"id": f"n{i}", "text": f"Note {i} about the town fair and its long parade."} for i in range(4)])
    run = tmp_path / "run"
    run_stages(run, [src], stages=data_stages(), tokenize={"vocab_size": 300})
    ctx = load_run_context(run)
    for stage in data_stages():
        assert [s.name for s in get_stage(stage).steps(ctx)] == list(get_stage(stage).step_names), stage
