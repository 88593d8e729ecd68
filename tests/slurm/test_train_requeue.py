"""The training job on a real SLURM cluster: `scontrol requeue` while it trains; the requeued job resumes
from its last checkpoint and ends with the uninterrupted run's losses and weights, bit for bit."""
import subprocess
import time

import pytest

from slurm.config import SlurmConfig
from slurm.submit import sbatch
from slurm.train import train_job
from tests.pretrain.conftest import TWO_PHASE, losses, new_run, run_train, runs_root, write_config  # noqa: F401
from tests.pretrain.test_resume import digest
from tests.slurm.conftest import wait_for_job

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# longer than the trainer's own resume tests, so the requeue lands mid-run
LONG = {**TWO_PHASE, "phases": [{**TWO_PHASE["phases"][0], "steps": 40}, {**TWO_PHASE["phases"][1], "steps": 10}]}
FINAL = 50


def _reference_and_job(tmp_path, name: str, checkpoint_step: int):
    """An uninterrupted reference run, then the same config as a SLURM training job, returned once it has
    written step `checkpoint_step` and is still training (an interruption then lands mid-run)."""
    config = write_config(tmp_path / "train.json", LONG)
    reference = new_run(tmp_path, "reference")
    run_train(1, "--config", config, "--run-dir", reference)
    run = new_run(tmp_path, name)
    job = train_job(SlurmConfig(train_time="00:20:00", train_cpus_per_task=1, train_procs_per_node=1,
                                signal_seconds=60), run, config_path=config)
    job_id = sbatch(job)
    deadline = time.time() + 300
    while not (run / f"train/checkpoints/step-{checkpoint_step}/meta.json").is_file():
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    assert not (run / "train/summary.json").is_file()          # still training
    return reference, run, job_id


def _finished_after_restart(run, job_id, restarts: tuple[str, ...]) -> str:
    assert wait_for_job(job_id, timeout=900) == "COMPLETED"
    info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert any(f"Restarts={n}" in info for n in restarts), info
    log = next((run / "slurm" / "logs").glob(f"train-{job_id}.out")).read_text()
    assert "restart 1" in log and "resuming from" in log
    return log


def test_requeued_training_job_resumes_to_the_uninterrupted_weights(cluster, tmp_path, runs_root):
    reference, run, job_id = _reference_and_job(tmp_path, "slurm", 10)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    _finished_after_restart(run, job_id, ("1", "2"))
    assert losses(run) == losses(reference)
    final = f"train/checkpoints/step-{FINAL}"
    for name in sorted(p.name for p in (reference / final).glob("*.safetensors")):
        assert digest(run / final / name) == digest(reference / final / name), name
    assert digest(run / "train/hf/model.safetensors") == digest(reference / "train/hf/model.safetensors")


def test_usr1_makes_the_job_checkpoint_exit_75_and_requeue_itself(cluster, tmp_path, runs_root):
    """The time-limit path: USR1 to the batch shell (what `--signal=B:USR1@N` sends before the limit;
    delivered here with `scancel --signal=USR1 --batch`, since SLURM's own timing is +-30 s) reaches the
    trainer, which checkpoints and exits 75; the script then runs `scontrol requeue` on its own job
    (nobody outside does), and the requeued job resumes to the uninterrupted run's losses."""
    reference, run, job_id = _reference_and_job(tmp_path, "usr1", 5)
    subprocess.run(["scancel", "--signal=USR1", "--batch", job_id], check=True)
    log = _finished_after_restart(run, job_id, ("1",))
    assert "exiting 75" in log and "trainer exited 75" in log  # checkpointed on the signal, exit 75
    assert losses(run) == losses(reference)
