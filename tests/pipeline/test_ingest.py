import base64
import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common import reasons as R
from common.io import read_jsonl
from pipeline.readers import InputError
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats, write_jsonl

BAD_LINES = [
    (b'{"id": "ok-1", "text": "A good record."}', ""),
    (b'{"id": "j", "text": "unterminated', R.INVALID_JSON),
    (b'{"id": "u", "text": "caf\xe9"}', R.INVALID_UTF8),
    (b'"just a string"', R.NOT_AN_OBJECT),
    (b'{"id": "m"}', R.MISSING_TEXT),
    (b'{"id": "n", "text": null}', R.MISSING_TEXT),
    (b'{"id": "t", "text": ["a", "list"]}', R.TEXT_NOT_STRING),
    (b'{"id": "e", "text": ""}', R.EMPTY_TEXT),
    (b'{"id": "w", "text": " \\t\\n "}', R.EMPTY_TEXT),
    (b'{"id": "big", "text": "' + b"y" * 600 + b'"}', R.TEXT_TOO_LARGE),
    (b'{"id": 3.5, "text": "float id"}', R.BAD_ID),
    (b'{"id": "ok-1", "text": "reuses an id"}', R.DUPLICATE_ID),
    (b'', R.INVALID_JSON),
    (b'{"text": "no id here"}', ""),
    (b'{"id": 7, "text": "integer id", "lang": "en"}', ""),
    (b'{"id": "nul", "text": "nul \\u0000 inside is valid text"}', ""),
    (b'{"id": "deep", "text": ' + b"[" * 5000 + b"]" * 5000 + b"}", R.INVALID_JSON),
]


def _by_line(rows):
    out = {}
    for r in rows:
        d = orjson.loads(r["detail"])
        out[d.get("line")] = r
    return out


@pytest.fixture
def bad_run(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "records.jsonl", [l for l, _ in BAD_LINES])
    run = tmp_path / "run"
    run_stages(run, [src], ingest={"max_text_bytes": 500})
    return run


def test_every_bad_record_kind_is_quarantined_with_its_reason_file_and_line(bad_run):
    rows = ledger_rows(bad_run, "ingest")
    assert len(rows) == len(BAD_LINES)
    quarantined = {orjson.loads(r["detail"])["line"]: r for r in rows if r["decision"] == R.QUARANTINED}
    for lineno, (_, reason) in enumerate(BAD_LINES, start=1):
        if reason:
            row = quarantined[lineno]
            assert row["reason"] == reason, (lineno, row)
            detail = orjson.loads(row["detail"])
            assert detail["file"] == "records.jsonl" and detail["line"] == lineno
            assert row["id"] == f"records.jsonl:{lineno}"
        else:
            assert lineno not in quarantined
    st = stats(bad_run, "ingest")
    assert_books(st)
    assert st["kept"] == sum(1 for _, r in BAD_LINES if not r)


def test_quarantine_keeps_the_raw_bytes_of_every_bad_record(bad_run):
    q = list(read_jsonl(bad_run / "ingest" / "quarantine" / "00000.jsonl.zst"))
    assert len(q) == sum(1 for _, r in BAD_LINES if r)
    for rec in q:
        original = BAD_LINES[rec["line"] - 1][0]
        raw = base64.b64decode(rec["raw_b64"]) if "raw_b64" in rec else rec["raw"].encode("utf-8")
        assert raw == original


def test_ids_are_generated_from_file_and_line_and_meta_keeps_other_fields(bad_run):
    from pipeline.shards import read_shard
    docs = {d.id: d for p in sorted((bad_run / "ingest" / "shards").glob("*.jsonl.zst")) for d in read_shard(p)}
    assert "records.jsonl:14" in docs
    assert docs["7"].meta["lang"] == "en"
    assert docs["7"].meta["_src"] == {"file": "records.jsonl", "line": 15}
    assert "\x00" in docs["nul"].text


@pytest.mark.parametrize("compress,suffix", [("zstd", ".jsonl.zst"), ("gzip", ".jsonl.gz")])
def test_truncated_compressed_file_keeps_intact_lines_and_quarantines_the_tail(tmp_path, compress, suffix):
    lines = [orjson.dumps({"id": f"d{i}", "text": f"document number {i} " * 20}) for i in range(3000)]
    whole = write_jsonl(tmp_path / f"whole{suffix}", lines, compress)
    data = whole.read_bytes()
    cut = tmp_path / "in"
    cut.mkdir()
    (cut / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    run = tmp_path / "run"
    run_stages(run, [cut])
    st = stats(run, "ingest")
    assert_books(st)
    assert st["quarantined"] == {R.TRUNCATED_INPUT: 1}
    assert 0 < st["kept"] < 3000
    row = next(r for r in ledger_rows(run, "ingest") if r["decision"] == R.QUARANTINED)
    detail = orjson.loads(row["detail"])
    assert detail["file"] == f"cut{suffix}" and detail["line"] == st["kept"] + 1


def test_parquet_and_hf_dataset_directory(tmp_path):
    import datasets
    src = tmp_path / "in"
    src.mkdir()
    table = pa.table({"id": ["p1", None, "p3"], "body": ["parquet one", "parquet two", None]})
    pq.write_table(table, src / "a.parquet")
    ds = datasets.Dataset.from_dict({"id": ["h1", "h2"], "body": ["hf one", "hf two"]})
    ds.save_to_disk(str(src / "hfdir"))
    (src / "broken.parquet").write_bytes(b"not a parquet file")
    run = tmp_path / "run"
    run_stages(run, [src], ingest={"text_field": "body"})
    st = stats(run, "ingest")
    assert_books(st)
    assert st["kept"] == 4
    assert st["quarantined"] == {R.MISSING_TEXT: 1, R.UNREADABLE_INPUT: 1}
    ids = {r["id"] for r in ledger_rows(run, "ingest") if r["decision"] == R.KEPT}
    assert ids == {"p1", "a.parquet:2", "h1", "h2"}


def test_unicode_normalisation_is_applied_and_recorded(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "u.jsonl", [{"id": "a", "text": "cafe\u0301 and ﬁ ligature"}])
    from pipeline.shards import read_shard
    for form, expect in (("NFC", "caf\u00e9 and ﬁ ligature"), ("NFKC", "caf\u00e9 and fi ligature"),
                         ("none", "cafe\u0301 and ﬁ ligature")):
        run = tmp_path / f"run-{form}"
        run_stages(run, [src], ingest={"unicode_normalization": form})
        doc = next(read_shard(next((run / "ingest" / "shards").glob("*.zst"))))
        assert doc.text == expect
        st = stats(run, "ingest")
        assert st["unicode_normalization"] == form
        assert st["blocks"]["0:input_reader"]["normalized_changed"] == (0 if form == "none" else 1)


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl"):
        run_stages(tmp_path / "run", [tmp_path / "nope.jsonl"])


def test_unsupported_file_type_is_named(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("a,b\n")
    with pytest.raises(InputError, match=r"data\.csv.*unsupported"):
        run_stages(tmp_path / "run", [f])


def test_shards_hold_at_most_docs_per_shard(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "many.jsonl", [{"id": str(i), "text": f"text {i}"} for i in range(25)])
    run = tmp_path / "run"
    run_stages(run, [src], ingest={"docs_per_shard": 10})
    assert [s["docs"] for s in stats(run, "ingest")["shards"]] == [10, 10, 5]
