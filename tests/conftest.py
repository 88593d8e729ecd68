import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    os.environ.setdefault("NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NO_PROGRESS"] = "1"
    return env


def kill_9_mid_run(args, *, started: Path, final: Path, seed: int, max_delay_s: float, timeout: float,
                   reset=None, attempts: int = 6) -> dict:
    """Run `python ARGS` in its own process group, wait until `started` exists (real work has begun), then
    a seeded random delay in [0, max_delay_s), and kill -9 the whole group. The kill must land mid-run:
    the process was still running (it died of the signal) and `final` (the marker its end writes) did
    not exist. When the work finished first, `reset()` restores the starting state and the trial is
    repeated with a new seeded moment, shorter each time; it fails after `attempts` tries, so no trial
    passes having killed nothing. Returns {attempt, delay_s} of the kill that landed."""
    import random
    import signal
    import time
    rng = random.Random(seed)
    for attempt in range(attempts):
        delay = rng.uniform(0.0, max_delay_s) / 2 ** attempt
        if attempt and reset is not None:
            reset()
        if started.exists():  # else the wait below would not wait for this attempt's work to begin
            raise AssertionError(f"{started} exists before the run starts: reset() must restore the start")
        proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while not started.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(delay)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.wait() == -signal.SIGKILL and not final.exists():
            return {"attempt": attempt, "delay_s": round(delay, 3)}
    raise AssertionError(f"the kill never landed mid-run in {attempts} attempts: {' '.join(map(str, args))}")


def run_cli(*args, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    """Run `python -m ...` the way a user would, from the repo root."""
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


def is_volatile(rel: str) -> bool:
    """Files the determinism contract excludes: timing.json files and logs."""
    parts = Path(rel).parts
    return Path(rel).name == "timing.json" or "logs" in parts


def tree_digest(root: Path, exclude_prefixes=()) -> dict[str, str]:
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            rel = str(p.relative_to(root))
            if is_volatile(rel) or any(rel.startswith(x) for x in exclude_prefixes):
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
