"""Shared helpers: tokenized test data (copies of a real pipeline run's tokenize output),
train configs as JSON, and trainer launches as real subprocesses (torchrun for several processes)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, cli_env, run_cli

VOCAB = 512  # the tokenizer the real pipeline trains for these tests
SOURCE_RUNS: Path | None = None  # set per session (shared by xdist workers): real pipeline runs to copy from


def pipeline_run(kind: str) -> Path:
    """A real `python -m pipeline run` on the tiny demo corpus, made once per session: "filtered" runs
    ingest -> dedupe -> cbrn -> tokenize, "unfiltered" ingest -> tokenize (tokenize.allow_unfiltered).
    The trainer's tests train on these manifests, exactly as the tokenize stage writes them."""
    from filelock import FileLock

    assert SOURCE_RUNS is not None, "the pretrain conftest's session fixture has not run"
    run = SOURCE_RUNS / f"pipeline-{kind}"
    stages = "ingest,dedupe,cbrn,tokenize" if kind == "filtered" else "ingest,tokenize"
    with FileLock(str(SOURCE_RUNS / f"pipeline-{kind}.lock")):
        if not (run / "tokenize" / "manifest.json").is_file():
            shutil.rmtree(run, ignore_errors=True)
            args = ["-m", "pipeline", "run", "--preset", "tiny", "--stages", stages, "--run-dir", run,
                    "--set", f"tokenize.vocab_size={VOCAB}"]
            if kind != "filtered":
                args += ["--set", "tokenize.allow_unfiltered=true"]
            run_cli(*args)
    return run


def make_tokenized(directory: Path, *, filtered: bool = True) -> Path:
    """A copy of a real tokenize output at `directory`; for filtered data the cbrn stage's stats.json and
    ledgers go beside it (`directory/../cbrn`), where the trainer compares the manifest's filter record
    with them."""
    source = pipeline_run("filtered" if filtered else "unfiltered")
    directory = Path(directory)
    shutil.copytree(source / "tokenize", directory, ignore=shutil.ignore_patterns("_tasks", "logs"))
    cbrn = directory.parent / "cbrn"
    if filtered and not cbrn.exists():
        cbrn.mkdir(parents=True)
        shutil.copy2(source / "cbrn" / "stats.json", cbrn / "stats.json")
        shutil.copytree(source / "cbrn" / "ledger", cbrn / "ledger")
    return directory


# Two phases (plain RoPE at 32 -> YaRN x2 at 64), checkpoints every 5 steps and at the boundary (12).
TWO_PHASE = {
    "seed": 7,
    "model": {"preset": "tiny"},
    "phases": [
        {"name": "base", "steps": 12, "seq_len": 32, "global_batch": 8, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 3},
        {"name": "long", "steps": 6, "seq_len": 64, "global_batch": 4, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 1,
         "yarn_factor": 2.0, "yarn_original_context": 32},
    ],
    "checkpoint": {"every": 5, "keep_last": 10},
    "log": {"every": 1},
}


def write_config(path: Path, train: dict) -> Path:
    from common.io import atomic_write_json
    return atomic_write_json(path, {"train": train})  # atomic: another xdist worker may be reading it


def new_run(root: Path, name: str, *, filtered: bool = True) -> Path:
    run = root / name
    make_tokenized(run / "tokenize", filtered=filtered)
    return run


def train_env() -> dict:
    env = cli_env()
    env["OMP_NUM_THREADS"] = "1"  # bitwise comparisons need the same thread count in every run
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)  # set by an in-process group of this test session
    return env


def train_cmd(nproc: int, *args) -> list[str]:
    from pretrain.distributed import free_port
    if nproc == 1:
        return [sys.executable, "-m", "pretrain.train", *map(str, args)]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr",
            "127.0.0.1", "--master-port", str(free_port()), "-m", "pretrain.train", *map(str, args)]


def run_train(nproc: int, *args, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    for _ in range(2):
        proc = subprocess.run(train_cmd(nproc, *args), cwd=REPO, env=train_env(), capture_output=True, text=True,
                              timeout=timeout)
        # the free port the launcher picked was taken before torchrun bound it (another test process got it
        # in between): nothing ran yet, so run again on a new port
        if not (proc.returncode and "EADDRINUSE" in proc.stderr):
            break
    if check and proc.returncode != 0:
        raise AssertionError(f"trainer failed ({proc.returncode}): {args}\nstdout:\n{proc.stdout[-3000:]}\n"
                             f"stderr:\n{proc.stderr[-5000:]}")
    return proc


def start_train(nproc: int, *args, log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(train_cmd(nproc, *args), cwd=REPO, env=train_env(), stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited ({proc.returncode}) before {path} appeared")
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines() if line.strip()]


def losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in metrics(run)]


def full_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Every parameter, reassembled from the per-rank files of a checkpoint."""
    from pretrain.checkpoint import ShardIndex
    with ShardIndex(checkpoint, "model") as idx:
        return {k: idx.read(k, (0,) * len(idx.global_shapes[k]), idx.global_shapes[k]) for k in idx.pieces}


@pytest.fixture(scope="session", autouse=True)
def runs_root(tmp_path_factory, worker_id) -> Path:
    """One directory for the whole session, shared by the xdist workers (each run has its own name)."""
    global SOURCE_RUNS
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "pretrain_runs"
    root.mkdir(exist_ok=True)
    SOURCE_RUNS = root
    return root


@pytest.fixture(scope="session")
def two_phase_config(runs_root) -> Path:
    path = runs_root / "two_phase.json"
    return path if path.is_file() and json.loads(path.read_text()) == {"train": TWO_PHASE} else write_config(path, TWO_PHASE)


@pytest.fixture(scope="session")
def reference_run(runs_root, two_phase_config) -> Path:
    """One process, the two-phase config, uninterrupted: the reference for parity and resume tests.
    Trained once per session: xdist workers wait on a lock (xdist_group does not group with pytest 9)."""
    from filelock import FileLock

    run = runs_root / "reference"
    with FileLock(str(runs_root / "reference.lock")):
        if not (run / "train" / "summary.json").is_file():
            shutil.rmtree(run, ignore_errors=True)
            make_tokenized(run / "tokenize")
            run_train(1, "--config", two_phase_config, "--run-dir", run)
    return run


@pytest.fixture(scope="module")
def gloo_world():
    """A 1-rank gloo process group in this process (GPTDataset and the checkpoint writer need one)."""
    import torch.distributed as dist
    from pretrain.distributed import free_port

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(free_port())
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
