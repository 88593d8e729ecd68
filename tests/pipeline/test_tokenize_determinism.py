"""Tokenize outputs are byte-identical whatever the worker count, after kill -9 + resume, and after damage."""
import os
import shutil

import pytest

from tests.conftest import kill_9_mid_run, run_cli, tree_digest

# small batches and zarr chunks so the multi-batch and multi-chunk paths run; short sequences so some split
SETS = ["tokenize.allow_unfiltered=true", "tokenize.vocab_size=2048", "tokenize.max_sequence_tokens=128",
        "tokenize.batch_bytes=20000", "tokenize.zarr_chunk_tokens=4096"]


def _args(run_dir, stages, workers):
    return ["-m", "pipeline", "run", "--preset", "tiny", "--run-dir", str(run_dir), "--stages", stages,
            "--workers", str(workers), *sum((["--set", s] for s in SETS), [])]


def _tokenize(run_dir, workers):
    return run_cli(*_args(run_dir, "tokenize", workers))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    run_cli(*_args(run, "ingest", 2))
    return run


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def reference(ingested, tmp_path_factory):
    run = _copy(ingested, tmp_path_factory.mktemp("w1") / "run")
    _tokenize(run, workers=1)
    digest = tree_digest(run)
    assert any(k.startswith("tokenize/tokens.zarr/tokens/c/") for k in digest)
    assert sum(k.startswith("tokenize/tokens.zarr/tokens/c/") for k in digest) > 1, "want several zarr chunks"
    return digest


@pytest.fixture(scope="module")
def two_workers(ingested, tmp_path_factory):
    run = _copy(ingested, tmp_path_factory.mktemp("w2") / "run")
    _tokenize(run, workers=2)
    return run


def test_workers_1_and_2_give_identical_files(reference, two_workers):
    digest = tree_digest(two_workers)
    assert digest.keys() == reference.keys()
    assert [k for k in digest if digest[k] != reference[k]] == []


def test_kill_9_during_tokenize_then_rerun_gives_identical_files(ingested, reference, tmp_path):
    run = _copy(ingested, tmp_path / "killed")

    def reset():
        shutil.rmtree(run)
        _copy(ingested, run)

    kill_9_mid_run(_args(run, "tokenize", 2), started=run / "tokenize" / "_tasks" / "encode",
                   final=run / "tokenize" / "stats.json", seed=int(os.environ.get("KILL_SEED", "5")),
                   max_delay_s=1.5, timeout=120, reset=reset)
    _tokenize(run, workers=2)
    assert tree_digest(run) == reference


def test_damaged_shard_zarr_chunk_and_merged_outputs_are_redone(two_workers, reference, tmp_path):
    run = _copy(two_workers, tmp_path / "damaged")
    tok = run / "tokenize"
    shard_bin = sorted((tok / "shards").glob("*.bin"))[1]
    data = bytearray(shard_bin.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard_bin.write_bytes(bytes(data))
    sorted((tok / "tokens.zarr" / "tokens" / "c").iterdir())[0].unlink()
    (tok / "merged" / "data.idx").write_bytes(b"MMIDIDX\x00\x00 half written")
    (tok / "stats.json").unlink()
    (tok / "manifest.json").unlink()
    _tokenize(run, workers=1)
    assert tree_digest(run) == reference
