"""The pipeline on a real SLURM cluster (one node): every stage through sbatch equals the local executor
byte for byte; cancel + resubmit; hostile names."""
import json
import subprocess
import time

import pytest

from tests.conftest import run_cli, tree_digest
from tests.pipeline.helpers import assert_books, stats
from tests.slurm.conftest import wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
STAGES = "ingest,dedupe,cbrn,tokenize,audit"  # every data stage and the audit


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("local") / "run"
    run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", STAGES)
    return tree_digest(run)


def test_chain_through_sbatch_matches_the_local_executor(cluster, tmp_path, local_reference):
    run = tmp_path / "run"
    out = run_cli("-m", "pipeline", "submit", "--preset", "tiny", "--run-dir", run, "--stages", STAGES).stdout
    jobs = dict(line.split("\t") for line in out.strip().splitlines())
    assert list(jobs) == STAGES.split(",")
    for stage, job_id in jobs.items():
        assert wait_for_job(job_id) in ("COMPLETED", "FORGOTTEN"), (stage, (run / "slurm" / "logs").iterdir())
    assert tree_digest(run, exclude_prefixes=("slurm/",)) == local_reference
    status = run_cli("-m", "pipeline", "status", run).stdout
    assert "dedupe" in status and "COMPLETED" in status


def test_cancelled_array_task_is_the_only_one_resubmitted(cluster, tmp_path, local_reference):
    run = tmp_path / "run"
    cmd = ["-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", "ingest",
           "--executor", "slurm", "--set", "slurm.retries=0", "--set", "slurm.max_concurrent=1"]
    from tests.conftest import REPO, cli_env
    import sys
    proc = subprocess.Popen([sys.executable, *map(str, cmd)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jobs_file = run / "slurm" / "jobs.json"
    deadline = time.time() + 120
    while not jobs_file.is_file() and time.time() < deadline:
        time.sleep(0.2)
    job_id = json.loads(jobs_file.read_text())[0]["job_id"]
    subprocess.run(["scancel", f"{job_id}_2"], check=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0 and "[2]" in err        # the step fails, naming the task
    assert not (run / "ingest" / "stats.json").exists()
    run_cli(*cmd)                                        # re-submit the stage
    records = json.loads(jobs_file.read_text())
    assert records[-1]["array"].split("%")[0] == "2"     # only the unfinished task ran again
    assert_books(stats(run, "ingest"))
    ref = {k: v for k, v in local_reference.items() if k.startswith("ingest/")}
    got = {k: v for k, v in tree_digest(run, exclude_prefixes=("slurm/",)).items() if k.startswith("ingest/")}
    assert got == ref


def test_hostile_names_and_paths_run_exactly_that_value(cluster, tmp_path):
    weird = tmp_path / 'run dir "q" \'s\' $(touch PWNED)'
    run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", weird, "--stages", "ingest",
            "--executor", "slurm")
    assert (weird / "ingest" / "stats.json").is_file()
    assert_books(stats(weird, "ingest"))
    assert not list(tmp_path.rglob("PWNED")) and not list(tmp_path.parent.rglob("PWNED"))
