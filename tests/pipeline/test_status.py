"""`python -m pipeline status RUN_DIR`: stages done / failed / pending with their books and the last
error a task recorded, read from the run's files; `pipeline run --run-dir R` continues a run from its
stored config; with the SLURM controller unreachable, status says so at once and shows the job states
as unknown (not "finished")."""
from __future__ import annotations

import json
import os
import stat

from tests.conftest import cli_env, run_cli
from tests.pipeline.helpers import run_stages, stats, write_jsonl

TEXTS = ["The harbour town repaired its sea wall after the winter storms.",
         "A small orchestra gave a free concert in the park on Sunday afternoon.",
         "The harbour town repaired its sea wall after the winter storms."]


def _inputs(tmp_path):
    return write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(TEXTS)])


def test_status_continue_and_last_error(tmp_path):
    run = tmp_path / "run"
    run_stages(run, [_inputs(tmp_path)], stages=("ingest", "dedupe"))
    out = json.loads(run_cli("-m", "pipeline", "status", run, "--json").stdout)
    by = {r["stage"]: r for r in out["stages"]}
    assert by["ingest"]["state"] == by["dedupe"]["state"] == "done"
    assert (by["dedupe"]["in"], by["dedupe"]["kept"], by["dedupe"]["removed"]) == (3, 2, 1) == \
        (stats(run, "dedupe")["in"], stats(run, "dedupe")["kept"], sum(stats(run, "dedupe")["removed"].values()))
    assert by["cbrn"]["state"] == by["tokenize"]["state"] == by["train"]["state"] == "pending"
    text = run_cli("-m", "pipeline", "status", run).stdout
    assert "to continue: python -m pipeline run --run-dir" in text and "--stages cbrn,tokenize" in text

    # continue with nothing but the run directory: the stored config, unchanged
    config_before = (run / "config.json").read_bytes()
    proc = run_cli("-m", "pipeline", "run", "--run-dir", run, "--stages", "cbrn", "--workers", "1")
    assert "continuing" in proc.stderr and "stored config" in proc.stderr
    assert (run / "config.json").read_bytes() == config_before
    by = {r["stage"]: r for r in json.loads(run_cli("-m", "pipeline", "status", run, "--json").stdout)["stages"]}
    assert by["cbrn"]["state"] == "done" and by["cbrn"]["in"] == 2

    # a task that fails leaves its error for status: tokenize's shard directory is a file
    (run / "tokenize").mkdir()
    (run / "tokenize" / "shards").write_text("in the way\n")
    proc = run_cli("-m", "pipeline", "run", "--run-dir", run, "--stages", "tokenize", "--workers", "1", check=False)
    assert proc.returncode != 0
    status = json.loads(run_cli("-m", "pipeline", "status", run, "--json").stdout)
    tok = next(r for r in status["stages"] if r["stage"] == "tokenize")
    assert tok["state"] == "failed" and "shards" in tok["last_error"]["error"]
    assert os.path.isfile(tok["last_error"]["file"]) and "Traceback" in json.load(open(tok["last_error"]["file"]))["traceback"]
    assert "tokenize: last error:" in run_cli("-m", "pipeline", "status", run).stdout


def test_status_with_the_controller_unreachable(tmp_path):
    run = tmp_path / "run"
    run_stages(run, [_inputs(tmp_path)], stages=("ingest",))
    (run / "slurm").mkdir()
    (run / "slurm" / "jobs.json").write_text(json.dumps(
        [{"job_id": "41", "name": "ingest", "script": "ingest.sbatch", "array": "", "submitted": "x"},
         {"job_id": "42", "name": "dedupe", "script": "dedupe.sbatch", "array": "", "submitted": "x"}]))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"  # what scontrol prints when slurmctld is down
    fake.write_text("#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\n"
                    "exit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**cli_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "pipeline", "status", str(run)], env=env, capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "SLURM controller unreachable" in proc.stdout and "Unable to contact slurm controller" in proc.stdout
    assert proc.stdout.count("unknown (controller unreachable)") == 2 and "forgotten" not in proc.stdout
    assert "ingest" in proc.stdout and "done" in proc.stdout  # the stage table from the markers
