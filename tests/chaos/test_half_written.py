"""Half-written, corrupted or missing outputs left behind: detected and redone, never trusted."""
import random
import shutil

import orjson
import pytest

from tests.chaos.harness import RUN_NAME, diff, finish_and_compare, trial_seed
from tests.chaos.registry import all_names
from tests.conftest import tree_digest
from tests.pipeline.helpers import run_stages, write_jsonl


def _small_input(tmp_path):
    src = tmp_path / "in.jsonl"
    docs = [{"id": f"d{i}", "text": f"document {i} says something about topic {i % 7} " * 5} for i in range(40)]
    return write_jsonl(src, docs + [docs[3]])   # one duplicate id, so every writer has something to do


def test_temp_files_a_killed_writer_left_are_removed_and_the_rerun_is_identical(tmp_path):
    src = _small_input(tmp_path)
    ref, run = tmp_path / "ref" / RUN_NAME, tmp_path / "t" / RUN_NAME
    for r in (ref, run):
        run_stages(r, [src], stages=("ingest", "dedupe"), ingest={"docs_per_shard": 10})
    # what a writer killed before its rename leaves: one temp file per writer's naming scheme
    shard = next((run / "ingest" / "shards").iterdir())
    planted = [
        shard.with_name(f".{shard.name}.tmp-999999"),                           # ZstdLineWriter
        run / "ingest" / "ledger" / ".00000.parquet.tmp-999999",                # LedgerWriter
        run / "dedupe" / "work" / "sig" / ".00000-0000.sig.npy.k3j_x9q.tmp",    # atomic_write_bytes
        run / ".config.json.a1b2c3.tmp",
        run / "dedupe" / "_tasks" / "filter" / ".00000.json.zz9.tmp",
    ]
    for p in planted:
        p.write_bytes(shard.read_bytes()[:50])
    (run / "ingest" / "_tasks" / "read" / "00000.json").unlink()   # that task is redone too
    run_stages(run, [src], stages=("ingest", "dedupe"), ingest={"docs_per_shard": 10})
    assert diff(tree_digest(run), tree_digest(ref)) == []


def _damage(run, stage_dirs, rng) -> list[str]:
    """Truncate, bit-flip and delete outputs a marker vouches for, truncate a marker, truncate
    stats.json and leave half-written temp files; returns what was done (for the report)."""
    markers = sorted(m for d in stage_dirs for m in (d / "_tasks").glob("*/*.json"))
    outputs = sorted({d / rel for m in markers for d in [m.parents[2]] for rel in orjson.loads(m.read_bytes())["outputs"]})
    if not outputs:   # a stage without markers (audit): all its files are outputs
        outputs = sorted(p for d in stage_dirs for p in d.rglob("*") if p.is_file() and "logs" not in p.parts)
    picks = rng.sample(outputs, min(3, len(outputs)))
    picks += [rng.choice(outputs) for _ in range(3 - len(picks))]
    done = []

    def truncate(p):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        done.append(f"truncated {p.relative_to(run)}")

    truncate(picks[0])
    data = bytearray(picks[1].read_bytes())
    if data:
        data[rng.randrange(len(data))] ^= 0xFF
        picks[1].write_bytes(bytes(data))
        done.append(f"flipped a byte of {picks[1].relative_to(run)}")
    if picks[2].exists():
        picks[2].unlink()
        done.append(f"deleted {picks[2].relative_to(run)}")
    if markers:
        truncate(rng.choice(markers))
    for d in stage_dirs:
        if (d / "stats.json").is_file():
            truncate(d / "stats.json")
    half = picks[0].with_name(f".{picks[0].name}.tmp-999999")
    half.write_bytes(b"\x28\xb5\x2f\xfd half written")
    done.append(f"left {half.relative_to(run)}")
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", all_names())
def test_damaged_outputs_of_a_finished_stage_are_redone_byte_identical(
        name, reference, stage_or_skip, report, tmp_path):
    cs = stage_or_skip(name)
    seed = trial_seed("damage", name, 0)
    run = tmp_path / RUN_NAME
    shutil.copytree(reference.run_dir, run, ignore=shutil.ignore_patterns("logs"))
    for later in {p.name for p in run.iterdir()} - {"config.json", "input", *cs.needs, *cs.stages}:
        shutil.rmtree(run / later)
    done = _damage(run, [run / s for s in cs.stages], random.Random(seed))
    differences = finish_and_compare(reference, cs, run, tmp_path)
    report("damage", name, [{"stage": name, "seed": seed, "damage": done, "identical": not differences,
                             "differences": differences[:20]}])
    assert differences == [], done


def test_a_damaged_shard_of_the_input_stage_is_refused_naming_it_until_that_stage_redoes_it(tmp_path):
    src = _small_input(tmp_path)
    ref, run = tmp_path / "ref" / RUN_NAME, tmp_path / "t" / RUN_NAME
    run_stages(ref, [src], stages=("ingest", "dedupe"), ingest={"docs_per_shard": 10})
    run_stages(run, [src], stages=("ingest",), ingest={"docs_per_shard": 10})
    shard = sorted((run / "ingest" / "shards").iterdir())[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01    # inside the frame: may decode to other text without an error
    shard.write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match=rf"{shard.name}: its sha256 differs .* re-run stage 'ingest'"):
        run_stages(run, [src], stages=("dedupe",), ingest={"docs_per_shard": 10})
    assert not (run / "dedupe" / "stats.json").exists()
    run_stages(run, [src], stages=("ingest", "dedupe"), ingest={"docs_per_shard": 10})
    assert diff(tree_digest(run), tree_digest(ref)) == []
