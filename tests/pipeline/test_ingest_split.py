"""A big input file is read by several ingest tasks (JSON lines cut at line starts, plain or compressed;
parquet at row groups): the same documents, ids, line numbers and quarantines as one task reading it
whole, and byte-identical outputs for 1 and 2 workers."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common import reasons as R
from pipeline.readers import InputFile, iter_records, plan_parts
from pipeline.shards import read_shard
from tests.conftest import tree_digest
from tests.pipeline.helpers import ledger_rows, run_stages, stats, write_jsonl

SPLIT = 40_000


def _records(n=3000):
    out = []
    for i in range(n):
        rec = {"text": f"note {i}: " + " ".join(f"w{(i * k) % 97}" for k in range(5 + i % 40))}
        if i % 9:                      # every ninth record has no id: its id is FILE:LINE
            rec["id"] = f"r{i}"
        out.append(rec)
    return out


def _docs(run):
    return [(d.id, d.text, d.provenance["line"]) for p in sorted((run / "ingest" / "shards").glob("*.zst"))
            for d in read_shard(p)]


@pytest.mark.parametrize("compress", ["none", "gzip", "zstd"])
def test_one_big_jsonl_file_gives_several_tasks_and_the_same_documents(tmp_path, compress):
    recs = _records()
    lines = [r for r in recs]
    lines[500] = b"{broken json"               # a quarantine inside a later part keeps its true line number
    suffix = {"none": "", "gzip": ".gz", "zstd": ".zst"}[compress]
    src = write_jsonl(tmp_path / f"big.jsonl{suffix}", lines, compress=compress)
    whole = tmp_path / "whole"
    run_stages(whole, [src], ingest={"split_bytes": 0})
    runs = {}
    for workers in (1, 2):
        runs[workers] = tmp_path / f"split{workers}"
        run_stages(runs[workers], [src], workers=workers, ingest={"split_bytes": SPLIT})
    st = stats(runs[1], "ingest")
    assert stats(whole, "ingest")["tasks"] == 1 and st["tasks"] >= 4 and st["inputs"] == 1
    assert _docs(runs[1]) == _docs(whole)       # same ids (FILE:LINE ones too), texts, lines, order
    q = [r for r in ledger_rows(runs[1], "ingest") if r["decision"] == R.QUARANTINED]
    assert [(r["id"], r["reason"]) for r in q] == [("big.jsonl" + suffix + ":501", R.INVALID_JSON)]
    assert tree_digest(runs[1]) == tree_digest(runs[2])


def test_plan_cuts_at_line_starts_with_true_line_numbers(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", _records(2000))
    data = src.read_bytes()
    parts = plan_parts(InputFile(str(src), "a.jsonl", "jsonl"), SPLIT, 64)
    assert len(parts) > 3 and parts[0][:1] == (0,) and parts[-1][1] == -1
    for (s, e, first), nxt in zip(parts, parts[1:] + ((None,),)):
        assert s == 0 or data[s - 1:s] == b"\n"               # a line start
        assert first == data[:s].count(b"\n") + 1             # its true 1-based line number
        assert nxt[0] is None or e == nxt[0]                  # parts tile the file
    assert plan_parts(InputFile(str(src), "a.jsonl", "jsonl"), SPLIT, 3).__len__() == 3   # at most max parts
    assert plan_parts(InputFile(str(src), "a.jsonl", "jsonl"), 0, 64) == ()               # 0 = no split
    got = [r.line for p in parts for r in iter_records(InputFile(str(src), "a.jsonl", "jsonl"), part=p)]
    assert got == list(range(1, 2001))


def test_parquet_is_split_at_row_groups(tmp_path):
    recs = _records(2000)
    table = pa.table({"id": [r.get("id") for r in recs], "text": [r["text"] for r in recs]})
    src = tmp_path / "big.parquet"
    pq.write_table(table, src, row_group_size=100)
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_stages(whole, [src], ingest={"split_bytes": 0})
    run_stages(split, [src], workers=2, ingest={"split_bytes": SPLIT})
    assert stats(split, "ingest")["tasks"] > 2
    assert _docs(split) == _docs(whole)


def test_an_id_repeated_in_two_parts_is_caught_by_dedupe(tmp_path):
    """Each ingest task checks ids within its part; an id that repeats across parts of a split file is
    quarantined by the dedupe stage's global id check, naming where it was first used."""
    recs = _records(2000)
    recs[-1]["id"] = recs[1]["id"]
    src = write_jsonl(tmp_path / "a.jsonl", recs)
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"), ingest={"split_bytes": SPLIT})
    q = [r for r in ledger_rows(run, "dedupe") if r["decision"] == R.QUARANTINED]
    assert [r["reason"] for r in q] == [R.DUPLICATE_ID] and '"first":"a.jsonl:2"' in q[0]["detail"]


def test_an_hf_datasets_directory_is_split_by_rows_across_its_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    recs = _records(2000)

    def part(rs):
        return datasets.Dataset.from_dict({"id": [r.get("id") or "" for r in rs], "text": [r["text"] for r in rs]})
    src = tmp_path / "hfdir"
    datasets.DatasetDict({"train": part(recs[:1500]), "test": part(recs[1500:])}).save_to_disk(str(src))
    inp = InputFile(str(src), "hfdir", "hf")
    parts = plan_parts(inp, SPLIT, 64)
    assert len(parts) > 2 and parts[0][0] == 0 and parts[-1][1] == 2000
    # the parts tile the rows (numbered across the splits in name order: test, then train)
    got = [r.line for p in parts for r in iter_records(inp, part=p)]
    assert got == list(range(1, 2001))
    whole, runs = tmp_path / "whole", {}
    run_stages(whole, [src], ingest={"split_bytes": 0})
    for workers in (1, 2):
        runs[workers] = tmp_path / f"split{workers}"
        run_stages(runs[workers], [src], workers=workers, ingest={"split_bytes": SPLIT})
    assert stats(whole, "ingest")["tasks"] == 1 and stats(runs[1], "ingest")["tasks"] == len(parts)
    assert _docs(runs[1]) == _docs(whole)
    assert tree_digest(runs[1]) == tree_digest(runs[2])
