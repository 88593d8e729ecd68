"""Hostile input files for ingest: JSON nested 10,000 deep, a 100 MB line, compressed streams cut
or damaged at any byte, files that cannot be opened. Each bad record ends quarantined with its
exact reason, file and line; the run never crashes and the books balance."""
import gzip
import os
import subprocess
import sys

import orjson
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from common import reasons as R
from common.io import iter_lines
from pipeline.readers import InputFile, iter_records
from tests.conftest import REPO, cli_env
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats
from tests.pipeline.test_hostile_records import HYPO, check_accounting, record

DEPTH = 10_000


def _detail(row) -> dict:
    return orjson.loads(row["detail"])


# ---------------------------------------------------------------- nesting 10,000 deep

@pytest.mark.parametrize("where,column", [("top", 1026), ("text", 1042), ("meta", 5146), ("other", 1051)])
def test_json_nested_10000_deep_is_invalid_json_naming_the_depth_limit(where, column):
    arrays = b"[" * DEPTH + b"]" * DEPTH
    objects = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
    line = {"top": arrays,
            "text": b'{"id":"d","text":' + arrays + b"}",
            "meta": b'{"id":"d","text":"ok","meta":' + objects + b"}",
            "other": b'{"id":"d","text":"ok","x":' + arrays + b"}"}[where]
    rows = check_accounting([record(id="before", text="fine"), line, record(id="after", text="fine")])
    assert [r["reason"] for r in rows] == ["", R.INVALID_JSON, ""]
    assert _detail(rows[1]) == {"file": "in.jsonl", "line": 2,
                                "error": f"depth limit exceeded: line 1 column {column} (char {column - 1})"}


# ---------------------------------------------------------------- a 100 MB line

LINE_MB = 100


def _write_huge_line(path, compress: str):
    """{"id":"huge","text":"aaaa... 100 MB"} then a normal record, streamed (never all in memory)."""
    with open(path, "wb") as raw:
        out = raw
        if compress == "zstd":
            out = zstandard.ZstdCompressor(level=1).stream_writer(raw, closefd=False)
        elif compress == "gzip":
            out = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1)
        out.write(b'{"id":"huge","text":"')
        block = b"a" * (1 << 20)
        for _ in range(LINE_MB):
            out.write(block)
        out.write(b'"}\n' + record(id="next", text="the line after the huge one") + b"\n")
        if out is not raw:
            out.close()


def _peak_mb(run, src) -> float:
    """Peak RSS of ingest over `src` in a child process (one worker: the task runs in it), printed by
    the child itself: RUSAGE_CHILDREN here would be the largest child this worker ever reaped."""
    code = ("import resource, sys\nfrom tests.pipeline.helpers import run_stages\n"
            "run_stages(sys.argv[1], [sys.argv[2]], workers=1)\n"
            "print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", code, str(run), str(src)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split("peak_kb")[-1].split()[0]) / 1024


@pytest.mark.parametrize("suffix,compress", [(".jsonl", "none"), (".jsonl.zst", "zstd")])
def test_a_100mb_line_is_quarantined_as_text_too_large_with_file_and_line_in_bounded_memory(
        tmp_path, suffix, compress):
    src = tmp_path / f"huge{suffix}"
    _write_huge_line(src, compress)
    run = tmp_path / "run"
    # baseline: the same run over a one-line file, so the bound is on what the huge line adds
    # (the interpreter and libraries differ between machines; the line's cost should not)
    small = tmp_path / "small.jsonl"
    small.write_bytes(record(id="next", text="one short line") + b"\n")
    added_mb = _peak_mb(run, src) - _peak_mb(tmp_path / "run-small", small)
    rows = ledger_rows(run, "ingest")
    assert [(r["id"], r["decision"], r["reason"]) for r in rows] == [
        (f"huge{suffix}:1", R.QUARANTINED, R.TEXT_TOO_LARGE), ("next", R.KEPT, "")]
    assert _detail(rows[0]) == {"file": f"huge{suffix}", "line": 1, "id": "huge",
                                "error": "field 'text' is over ingest.max_text_bytes=4000000"}
    assert_books(stats(run, "ingest"))
    assert added_mb < 8 * LINE_MB, f"a {LINE_MB} MB line added {added_mb:.0f} MB of peak RSS"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compress", ["none", "zstd", "gzip"])
def test_reading_one_long_line_in_small_chunks_is_linear_not_quadratic(tmp_path, compress):
    # 32 MB in 1 KB chunks: joining per line takes milliseconds; re-copying the pending bytes per
    # chunk (pending += chunk; split) would copy ~512 GB and never finish within the timeout
    path = tmp_path / {"none": "l.jsonl", "zstd": "l.jsonl.zst", "gzip": "l.jsonl.gz"}[compress]
    data = b"x" * (32 << 20) + b"\nshort\n"
    path.write_bytes({"none": data, "zstd": zstandard.ZstdCompressor().compress(data) if compress == "zstd" else b"",
                      "gzip": gzip.compress(data, mtime=0) if compress == "gzip" else b""}[compress])
    assert [(n, len(line)) for n, line in iter_lines(path, chunk_size=1024)] == [(1, 32 << 20), (2, 5)]
    recs = list(iter_records(InputFile(str(path), path.name, "jsonl"), chunk_size=1024))
    assert [(r.line, r.error) for r in recs] == [(1, R.INVALID_JSON), (2, R.INVALID_JSON)]


# ---------------------------------------------------------------- compressed streams cut or damaged

def _records(n=60):
    return [record(id=f"r{i}", text=f"record {i} of a compressed file " * 4) for i in range(n)]


def _compressed(compress: str, lines: list[bytes]) -> tuple[bytes, set[int]]:
    """Several frames / gzip members (as a file appended to in pieces has), and where each ends."""
    data = b"\n".join(lines) + b"\n"
    one = zstandard.ZstdCompressor().compress if compress == "zstd" else lambda b: gzip.compress(b, mtime=0)
    frames = [one(data[i:i + 1500]) for i in range(0, len(data), 1500)]
    ends = {sum(len(f) for f in frames[:k]) for k in range(len(frames) + 1)}
    return b"".join(frames), ends


def _ingest_bytes(tmp_path, name: str, data: bytes):
    d = tmp_path / name.replace(".", "_")
    d.mkdir()
    (d / name).write_bytes(data)
    run = d / "run"
    run_stages(run, [d / name])
    return run, ledger_rows(run, "ingest")


def _assert_intact_prefix_then_one_damaged_tail(rows, name, n_lines, tail_reason):
    """Every line decoded before the damage is kept in order; at most one row after them, the
    tail, quarantined with `tail_reason` naming the file and the next line."""
    kept = [r for r in rows if r["decision"] == R.KEPT]
    assert [r["id"] for r in kept] == [f"r{i}" for i in range(len(kept))]
    rest = rows[len(kept):]
    assert len(rest) <= 1 and len(kept) <= n_lines
    for r in rest:
        assert (r["reason"], _detail(r)["file"], _detail(r)["line"]) == (tail_reason, name, len(kept) + 1)
        if tail_reason == R.TRUNCATED_INPUT:
            assert _detail(r)["error"].startswith(f"compressed stream ends early or is corrupt after line {len(kept)}: ")


@pytest.mark.parametrize("compress,suffix", [("zstd", ".jsonl.zst"), ("gzip", ".jsonl.gz")])
@HYPO
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_a_compressed_file_cut_at_any_byte_keeps_intact_lines_and_quarantines_the_tail(
        tmp_path_factory, compress, suffix, cut):
    lines = _records()
    data, frame_ends = _compressed(compress, lines)
    at = int(cut * len(data))
    run, rows = _ingest_bytes(tmp_path_factory.mktemp("cut"), f"cut{suffix}", data[:at])
    # cut inside a frame: the decoded tail is truncated_input; cut where a frame ends the stream is
    # whole and only its text stops mid-line: that last line is judged as JSON like any other
    tail = R.INVALID_JSON if at in frame_ends else R.TRUNCATED_INPUT
    _assert_intact_prefix_then_one_damaged_tail(rows, f"cut{suffix}", len(lines), tail)
    if at not in frame_ends:
        assert rows[-1]["reason"] == R.TRUNCATED_INPUT
    assert_books(stats(run, "ingest"))


@pytest.mark.parametrize("compress,suffix", [("zstd", ".jsonl.zst"), ("gzip", ".jsonl.gz")])
@HYPO
@given(where=st.floats(0.0, 1.0, exclude_max=True), garbage=st.binary(min_size=1, max_size=64))
def test_a_compressed_file_with_garbage_inside_never_crashes_and_balances(
        tmp_path_factory, compress, suffix, where, garbage):
    lines = _records()
    data, _ = _compressed(compress, lines)
    at = int(where * len(data))
    damaged = data[:at] + garbage + data[at + len(garbage):]
    run, rows = _ingest_bytes(tmp_path_factory.mktemp("garbage"), f"bad{suffix}", damaged)
    assert_books(stats(run, "ingest"))
    for r in rows:   # damage is quarantined with a reason, file and line; never a crash
        if r["decision"] != R.KEPT:
            d = _detail(r)
            assert r["reason"] in R.QUARANTINE_REASONS and d["file"] == f"bad{suffix}" and d["line"] >= 1


def test_a_file_that_cannot_be_opened_is_quarantined_as_unreadable(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jsonl").write_bytes(record(id="a", text="readable") + b"\n")
    (src / "b.jsonl").write_bytes(record(id="b", text="soon unreadable") + b"\n")
    run = tmp_path / "run"
    run_stages(run, [src])                      # records the input list in ingest/inputs.json
    os.unlink(src / "b.jsonl")
    os.mkdir(src / "b.jsonl")                   # listed as a file, now a directory: open() fails
    (run / "ingest" / "_tasks" / "read" / "00001.json").unlink()
    run_stages(run, [src])
    rows = ledger_rows(run, "ingest")
    assert [(r["id"], r["reason"]) for r in rows] == [("a", ""), ("b.jsonl:1", R.UNREADABLE_INPUT)]
    assert _detail(rows[1]) == {"file": "b.jsonl", "line": 1,
                                "error": f"cannot open: [Errno 21] Is a directory: '{src / 'b.jsonl'}'"}
    assert_books(stats(run, "ingest"))


@HYPO
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_a_parquet_file_cut_at_any_byte_is_quarantined_never_a_crash(tmp_path_factory, cut):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(300)], "text": [f"row {i} " * 10 for i in range(300)]}),
                   buf, row_group_size=50)
    data = buf.getvalue()
    run, rows = _ingest_bytes(tmp_path_factory.mktemp("pq"), "cut.parquet", data[: int(cut * len(data))])
    assert_books(stats(run, "ingest"))
    assert [r["reason"] for r in rows] == [R.UNREADABLE_INPUT]   # the footer is at the end: any cut loses it
    assert _detail(rows[0])["error"].startswith("not a readable parquet file: ")
