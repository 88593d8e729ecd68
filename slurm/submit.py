"""Write job scripts into the run directory and hand them to sbatch (argv lists, no shell)."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from common.io import atomic_write_bytes, atomic_write_json, read_json
from slurm.render import Job


class SlurmError(RuntimeError):
    pass


class ControllerUnreachable(SlurmError):
    """scontrol could not be run or got no answer: job states are unknown (not finished)."""


def require_slurm() -> None:
    if shutil.which("sbatch") is None:
        raise SlurmError("sbatch not found: the slurm executor needs a SLURM cluster (sinfo/sbatch on PATH)")


def write_script(job: Job) -> Path:
    job.path.parent.mkdir(parents=True, exist_ok=True)
    (job.path.parent / "logs").mkdir(exist_ok=True)
    atomic_write_bytes(job.path, job.script.encode("utf-8"))
    job.path.chmod(0o755)
    return job.path


def sbatch(job: Job, wait: bool = False, poll_s: float = 2.0) -> str:
    """Submit and record the job id in RUN_DIR/slurm/jobs.json; with wait, block until it leaves the
    queue (all array elements finished, failed or cancelled). Success is judged by the caller from
    completion markers, not exit codes."""
    require_slurm()
    path = write_script(job)
    proc = subprocess.run(["sbatch"] + job.argv + [str(path)], capture_output=True, text=True)
    job_id = proc.stdout.strip().split(";")[0] if proc.returncode == 0 else ""
    if not job_id:
        raise SlurmError(f"sbatch failed ({proc.returncode}) for {path}: {proc.stderr.strip()[-2000:]}")
    array = next((a.split("=", 1)[1] for a in job.argv if a.startswith("--array=")), "")
    record_job(path.parent.parent, job.name, job_id, path, array)
    if wait:
        wait_for(job_id, poll_s)
    return job_id


ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}


def wait_for(job_id: str, poll_s: float = 2.0) -> dict:
    while True:
        try:
            states = job_state(job_id)
        except ControllerUnreachable:  # a controller restart must not end a driver that waits
            time.sleep(max(poll_s, 10.0))
            continue
        if not any(v["state"] in ACTIVE for v in states.values()):
            return states
        if any("DependencyNeverSatisfied" in v["reason"] for v in states.values()):
            raise SlurmError(f"job {job_id} can never start: a dependency failed")
        time.sleep(poll_s)


def record_job(run_dir: Path, name: str, job_id: str, script: Path, array: str = "") -> None:
    """Append to RUN_DIR/slurm/jobs.json, which `python -m pipeline status` reads."""
    import fcntl
    path = Path(run_dir) / "slurm" / "jobs.json"
    with open(path.with_suffix(".lock"), "w") as lock:    # drivers and the submitter both append
        fcntl.flock(lock, fcntl.LOCK_EX)
        jobs = read_json(path) if path.is_file() else []
        jobs.append({"job_id": job_id, "name": name, "script": str(Path(script).name), "array": array,
                     "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")})
        atomic_write_json(path, jobs)


def job_state(job_id: str, timeout_s: float = 15.0) -> dict:
    """State of a job (or of every element of an array) from scontrol; {} once forgotten. Raises
    ControllerUnreachable when scontrol is missing, errs otherwise or does not answer in `timeout_s`."""
    cmd = ["scontrol", "show", "job", "-o", str(job_id)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError:
        raise ControllerUnreachable("scontrol is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise ControllerUnreachable(f"scontrol got no answer from the controller in {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "Invalid job id" in err:
            return {}
        raise ControllerUnreachable(f"{' '.join(cmd)}: {err or f'exit code {proc.returncode}'}")
    states: dict = {}
    for line in proc.stdout.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        jid = fields.get("JobId", "")
        if fields.get("ArrayTaskId"):
            jid = f"{fields.get('ArrayJobId')}_{fields['ArrayTaskId']}"
        states[jid] = {"state": fields.get("JobState", "?"), "exit": fields.get("ExitCode", ""),
                       "restarts": fields.get("Restarts", "0"), "reason": fields.get("Reason", "")}
    return states
