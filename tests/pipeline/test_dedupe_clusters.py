"""The cluster step at any size: streamed union-find against networkx, the same decisions whatever the
partition count, edge chunking or worker count, and bucket partitions sized from the data."""
import random

import networkx as nx
import numpy as np
import pytest

from common.io import read_json
from pipeline.dedupe import DedupeConfig
from pipeline.dedupe.steps import MAX_PARTITIONS, bucket_partitions, connect
from tests.pipeline.helpers import ledger_rows, run_stages, stats, write_jsonl


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streamed_components_equal_networkx_whatever_the_chunking(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    a = rng.integers(0, n, 3000)
    b = np.where(rng.random(3000) < 0.5, a + rng.integers(1, 40, 3000), rng.integers(0, n, 3000)) % n
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(a.tolist(), b.tolist()))
    want = np.arange(n)
    for comp in nx.connected_components(g):
        want[list(comp)] = min(comp)
    for chunk in (1, 7, 500, 3000):
        order = rng.permutation(len(a))                      # edge order and chunking must not matter
        chunks = [(a[order][i:i + chunk], b[order][i:i + chunk]) for i in range(0, len(a), chunk)]
        parent = np.empty(n, np.int32)
        members, roots = connect(parent, chunks)
        assert (parent == want).all()
        assert (members == np.nonzero(want != np.arange(n))[0]).all() and (roots == want[members]).all()


def test_connect_keeps_only_what_keep_returns():
    parent = np.empty(6, np.int64)
    chunks = [(np.array([0, 2, 4]), np.array([1, 3, 5]))]
    members, roots = connect(parent, chunks, keep=lambda a, b: (a[a != 2], b[a != 2]))
    assert members.tolist() == [1, 5] and roots.tolist() == [0, 4]


def test_bucket_partitions_are_sized_from_the_data():
    cfg = DedupeConfig()
    assert bucket_partitions(cfg, 0) == 1 and bucket_partitions(cfg, 25_000) == 1
    assert bucket_partitions(cfg, 287_587) == 6
    assert bucket_partitions(cfg, 10**9) == MAX_PARTITIONS          # ~244k documents a task, ~340 MB
    # the memory budget wins over the cap: 10^11 documents at 512 MB a task
    assert bucket_partitions(cfg, 10**11) == -(-10**11 * 22 * 64 // (512 << 20))
    assert bucket_partitions(DedupeConfig(task_memory_mb=16), 200_000) == 17
    assert bucket_partitions(DedupeConfig(partitions=5), 10**9) == 5  # an explicit setting is kept


def _corpus(src, rng):
    """Unique real texts, then repeated ids, exact copies and near copies spread over three files."""
    from pipeline.democorpus import stdlib_documents
    texts = [d["text"] for d in stdlib_documents(600) if len(d["text"].split()) > 60][:240]
    files = {"a.jsonl": [], "b.jsonl": [], "c.jsonl": []}
    for i, t in enumerate(texts):
        files["a.jsonl" if i % 2 else "b.jsonl"].append({"id": f"u{i}", "text": t})
    for i in range(0, len(texts), 3):
        words = texts[i].split()
        words.insert(rng.randrange(len(words)), "indeed")
        files["c.jsonl"].append({"id": f"n{i}", "text": " ".join(words)})       # near
        files["c.jsonl"].append({"id": f"x{i}", "text": texts[i + 1]})           # exact
        files["c.jsonl"].append({"id": f"u{i + 2}", "text": f"another text {i}"})  # repeated id
    for name, recs in files.items():
        write_jsonl(src / name, recs)


def test_decisions_do_not_depend_on_partitions_chunks_or_workers(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _corpus(src, random.Random(5))
    runs = {}
    for label, workers, dedupe in (("auto", 1, {}), ("p1", 2, {"partitions": 1}), ("p7", 2, {"partitions": 7})):
        run = tmp_path / label
        run_stages(run, [src], stages=("ingest", "dedupe"), workers=workers, ingest={"docs_per_shard": 50},
                   dedupe=dedupe)
        runs[label] = (sorted(tuple(r.values()) for r in ledger_rows(run, "dedupe")), stats(run, "dedupe"))
    rows, st = runs["auto"]
    c = st["clusters"]
    assert c["duplicate_ids"] == 80 and c["exact_removed"] >= 80 and c["near_removed"] >= 72, c
    assert len(st["shards"]) >= 6                                       # many shards, so many edge owners
    for label in ("p1", "p7"):
        assert runs[label][0] == rows, label
        assert runs[label][1]["clusters"] == c, label
    # every step's timing names the peak resident memory of its largest task (reset at each task's start)
    timing = read_json(tmp_path / "p7" / "dedupe" / "timing.json")["steps"]
    assert timing["buckets"]["tasks"] == 7
    assert all(10 < t["peak_task_rss_mb"] < 4000 for t in timing.values()), timing
