import os
import shutil
import subprocess
import time

import pytest


@pytest.fixture(scope="session")
def cluster():
    """A running SLURM cluster; tests skip without one, except in CI (REQUIRE_SLURM=1), where they fail."""
    if shutil.which("sinfo") is None or subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        if os.environ.get("REQUIRE_SLURM"):
            pytest.fail("REQUIRE_SLURM is set but no SLURM cluster answers (sinfo)")
        pytest.skip("no SLURM cluster (sinfo) on this machine")
    return True


def wait_for_job(job_id: str, timeout: float = 600) -> str:
    """Block until the job leaves the queue; returns its final state."""
    deadline = time.time() + timeout
    state = "?"
    while time.time() < deadline:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
        states = {kv.split("=", 1)[1] for line in out.splitlines() for kv in line.split() if kv.startswith("JobState=")}
        if not states:
            return "FORGOTTEN"
        state = ",".join(sorted(states))
        if states <= {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}:
            return state
        if "PENDING" in states and any("DependencyNeverSatisfied" in line for line in out.splitlines()):
            return "DEPENDENCY_NEVER_SATISFIED"
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still {state} after {timeout} s")
