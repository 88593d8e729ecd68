import random

import orjson
import pytest

from common import reasons as R
from pipeline.democorpus import stdlib_documents
from pipeline.shards import read_shard
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats, write_jsonl


@pytest.fixture(scope="module")
def real_docs():
    docs = [d["text"] for d in stdlib_documents(800) if len(d["text"].split()) > 80]
    assert len(docs) > 200
    return docs


def _edit_words(text: str, rng: random.Random, rate: float = 0.02) -> str:
    words = text.split()
    for _ in range(max(1, int(len(words) * rate))):
        i = rng.randrange(len(words))
        if rng.random() < 0.5:
            words.pop(i)
        else:
            words.insert(i, "indeed")
    return " ".join(words)


def _removed(run):
    return {r["id"]: (r["reason"], orjson.loads(r["detail"])) for r in ledger_rows(run, "dedupe")
            if r["decision"] == R.REMOVED}


def test_exact_duplicates_across_files_keep_the_first(tmp_path, real_docs):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "a.jsonl", [{"id": "a1", "text": real_docs[0]}, {"id": "a2", "text": real_docs[1]}])
    write_jsonl(src / "b.jsonl", [{"id": "b1", "text": real_docs[1]},
                                  {"id": "b2", "text": "  " + real_docs[0].replace(" ", "\n", 3) + "\n"},
                                  {"id": "b3", "text": real_docs[2]}])
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"), dedupe={"partitions": 3})
    removed = _removed(run)
    # the detail names the removed document's own file and line (the audit's per-file table)
    where = {"source": "b.jsonl", "record_source": "b.jsonl"}
    assert removed == {"b1": (R.EXACT_DUPLICATE, {"duplicate_of": "a2", "line": 1, **where}),
                       "b2": (R.EXACT_DUPLICATE, {"duplicate_of": "a1", "line": 2, **where})}
    assert_books(stats(run, "dedupe"))


def test_near_duplicates_are_removed_and_originals_kept(tmp_path, real_docs):
    rng = random.Random(7)
    originals = [{"id": f"o{i}", "text": t} for i, t in enumerate(real_docs[:120])]
    copies = [{"id": f"c{i}", "text": _edit_words(real_docs[i], rng)} for i in range(0, 120, 2)]
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "1.jsonl", originals)
    write_jsonl(src / "2.jsonl", copies)
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"))
    removed = _removed(run)
    copy_ids = {c["id"] for c in copies}
    caught = {i for i in copy_ids if i in removed}
    assert len(caught) >= 0.95 * len(copies)
    for i in caught:
        reason, detail = removed[i]
        assert reason == R.NEAR_DUPLICATE
        original = "o" + i[1:]
        # the kept document of the cluster: the original, or what the original itself duplicates
        assert detail["duplicate_of"] in (original, removed.get(original, (None, {}))[1].get("duplicate_of"))
        assert 0.5 <= detail["jaccard_est"] <= 1.0 and isinstance(detail["cluster"], int)
    # originals removed must be real near-duplicates of another original (stdlib has a few)
    for i in (i for i in removed if i.startswith("o")):
        assert removed[i][0] in (R.NEAR_DUPLICATE, R.EXACT_DUPLICATE)
        assert removed[i][1].get("jaccard_est", 1.0) >= 0.7


def test_documents_shorter_than_a_shingle_are_deduplicated(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "s.jsonl", [
        {"id": "s1", "text": "Hello world!"}, {"id": "s2", "text": "hello, WORLD"},
        {"id": "s3", "text": "Goodbye world"}, {"id": "s4", "text": "!!!"}, {"id": "s5", "text": "???"}])
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"))
    removed = _removed(run)
    assert removed == {"s2": (R.NEAR_DUPLICATE, {"duplicate_of": "s1", "cluster": 0, "jaccard_est": 1.0,
                                                 "source": "s.jsonl", "line": 2, "record_source": "s.jsonl"})}


def test_a_shared_long_boilerplate_prefix_does_not_merge_documents(tmp_path, real_docs):
    boilerplate = " ".join(real_docs[-1].split()[:120])
    docs = [{"id": f"p{i}", "text": boilerplate + "\n\n" + " ".join(real_docs[i].split()[:150])}
            for i in range(30)]
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "p.jsonl", docs)
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"))
    assert _removed(run) == {}


def test_an_id_used_in_two_files_is_quarantined_once(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "a.jsonl", [{"id": "same", "text": "first text about apples"}])
    write_jsonl(src / "b.jsonl", [{"id": "same", "text": "second text about pears"}])
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe"))
    rows = [r for r in ledger_rows(run, "dedupe") if r["decision"] == R.QUARANTINED]
    assert len(rows) == 1
    assert rows[0]["reason"] == R.DUPLICATE_ID and rows[0]["id"] == "b.jsonl:1"
    assert orjson.loads(rows[0]["detail"]) == {"id": "same", "first": "a.jsonl:1", "source": "b.jsonl", "line": 1,
                                              "record_source": "b.jsonl"}
    kept = [d for p in (run / "dedupe" / "shards").glob("*.zst") for d in read_shard(p)]
    assert [d.text for d in kept] == ["first text about apples"]
