"""Half-written, corrupted or missing outputs left behind: detected and redone, never trusted."""
from tests.chaos.harness import RUN_NAME, diff
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
