"""Shared helpers: tokenized test data (megatron-core's builder + a manifest like the tokenize stage's),
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

import numpy as np
import pytest
import torch

from tests.conftest import REPO, cli_env

VOCAB = 512


def documents(n: int = 400, seed: int = 0, vocab: int = VOCAB) -> list[list[int]]:
    """Learnable documents (arithmetic progressions mod vocab) ending in the end-of-document id 0."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s, d, length = rng.integers(1, vocab), rng.integers(1, 7), rng.integers(8, 120)
        out.append([int(1 + (s + k * d) % (vocab - 1)) for k in range(length)] + [0])
    return out


def make_tokenized(directory: Path, *, filtered: bool = True, seed: int = 0, n: int = 400) -> Path:
    return write_test_shards(directory, documents=documents(n, seed), vocab_size=VOCAB, eod_id=0, filtered=filtered)


def write_test_shards(directory: str | Path, *, documents: list[list[int]], vocab_size: int, eod_id: int,
                      filtered: bool = True, name: str = "data") -> Path:
    """A tokenize-like directory (merged/<name>.bin/.idx via megatron-core's builder + manifest.json);
    documents should end in eod_id. The manifest has the tokenize stage's shape."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder
    from common.io import atomic_write_json
    from pretrain.data import MANIFEST

    directory = Path(directory)
    (directory / "merged").mkdir(parents=True, exist_ok=True)
    prefix = directory / "merged" / name
    dtype = np.uint16 if vocab_size <= 1 << 16 else np.int32
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=dtype)
    for doc in documents:
        builder.add_document(np.asarray(doc, dtype=dtype), [len(doc)])
    builder.finalize(f"{prefix}.idx")
    manifest = {"vocab_size": vocab_size, "eod_id": eod_id, "dtype": np.dtype(dtype).name,
                "tokenizer_sha256": "test", "tokens": sum(map(len, documents)), "documents": len(documents),
                "merged": {"prefix": f"merged/{name}"},
                "filter": {"stage": "cbrn", "note": "test data"} if filtered else None, "unfiltered": not filtered}
    atomic_write_json(directory / MANIFEST, manifest)
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
    proc = subprocess.run(train_cmd(nproc, *args), cwd=REPO, env=train_env(), capture_output=True, text=True,
                          timeout=timeout)
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


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory, worker_id) -> Path:
    """One directory for the whole session, shared by the xdist workers (each run has its own name)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "pretrain_runs"
    root.mkdir(exist_ok=True)
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
    from pretrain.parallelize import destroy_mesh
    destroy_mesh()
    dist.destroy_process_group()
