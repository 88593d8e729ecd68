"""Input files -> raw records, never losing one.

Supported: `.jsonl`/`.json` lines (plain, `.gz`, `.zst`), `.parquet`, and a local HF `datasets`
directory saved with `save_to_disk` (no hub). A plain directory expands to the supported files
inside it. A record that cannot be decoded becomes a `RawRecord` carrying the reason, the file and
line, and the raw bytes, so ingest can quarantine it.
"""
from __future__ import annotations

import glob
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson
import zstandard

from common import reasons
from common.io import LineSplitter, open_binary_read

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".jsonl.zst", ".ndjson.zst")
PARQUET_SUFFIXES = (".parquet",)
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


class InputError(ValueError):
    pass


@dataclass(frozen=True)
class InputFile:
    path: str     # as resolved on disk
    rel: str      # stable name used in ids and provenance
    kind: str     # jsonl | parquet | hf
    # the file split into parts read by separate ingest tasks, each (start, end, first_line): JSON lines by
    # byte offsets into the (decompressed) stream, end -1 = to the end; parquet by row groups [start, end);
    # an HF datasets directory by rows [start, end) counted across its splits in name order.
    # Empty = the whole file is one part.
    parts: tuple = ()


PLAN_CHUNK = 1 << 20


def plan_parts(inp: InputFile, split_bytes: int, max_parts: int) -> tuple:
    """Where to cut a big input so that several tasks read it: a deterministic function of the file's bytes
    and the two settings only (never of the worker count), so outputs do not depend on how many run.
    JSON lines are cut at line starts (found in one pass that counts lines, so each part knows its first
    line number and ids/provenance equal an unsplit read); parquet at row-group boundaries. A damaged
    compressed stream ends the plan where it breaks: the last part reads on and reports the damage."""
    if split_bytes <= 0 or max_parts <= 1:
        return ()
    if inp.kind == "jsonl":
        return _plan_jsonl(inp.path, split_bytes, max_parts)
    if inp.kind == "parquet":
        return _plan_parquet(inp.path, split_bytes, max_parts)
    if inp.kind == "hf":
        return _plan_hf(inp.path, split_bytes, max_parts)
    return ()


def _n_parts(total: int, split_bytes: int, max_parts: int) -> int:
    return max(1, min(max_parts, -(-total // split_bytes)))


def _plan_jsonl(path: str, split_bytes: int, max_parts: int) -> tuple:
    from common.io import compression_of
    size = os.path.getsize(path)
    # a compressed file must be decompressed to find its lines: only worth it when it is surely big
    if size <= (split_bytes if compression_of(path) == "none" else split_bytes // 8):
        return ()
    marks = []   # per chunk read: (offset, newlines before it, offset of its first newline or -1)
    off = lines = 0
    try:
        with open_binary_read(path) as fh:
            while True:
                try:
                    chunk = fh.read(max(4096, min(PLAN_CHUNK, split_bytes // 8)))   # cuts land within 1/8 part
                except (EOFError, OSError, zstandard.ZstdError, zlib.error):
                    break
                if not chunk:
                    break
                nl = chunk.find(b"\n")
                marks.append((off, lines, off + nl if nl >= 0 else -1))
                lines += chunk.count(b"\n")
                off += len(chunk)
    except OSError:
        return ()
    n = _n_parts(off, split_bytes, max_parts)
    if n <= 1:
        return ()
    cuts, j = [], 0
    for k in range(1, n):
        target = k * off // n
        while j < len(marks) and (marks[j][0] < target or marks[j][2] < 0):
            j += 1      # the first chunk at or after the target that holds a newline
        if j == len(marks):
            break
        start, first_line = marks[j][2] + 1, marks[j][1] + 2   # the line after that chunk's first newline
        if start < off and (not cuts or start > cuts[-1][0]):
            cuts.append((start, first_line))
        j += 1
    bounds = [(0, 1)] + cuts
    return tuple((s, bounds[i + 1][0] if i + 1 < len(bounds) else -1, fl) for i, (s, fl) in enumerate(bounds))


def _plan_parquet(path: str, split_bytes: int, max_parts: int) -> tuple:
    import pyarrow.parquet as pq
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:
        return ()   # the reader reports an unreadable file
    groups = [(meta.row_group(i).num_rows, meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups)]
    total = sum(b for _, b in groups)
    n = _n_parts(total, split_bytes, max_parts)
    if n <= 1 or len(groups) <= 1:
        return ()
    parts, start, rows, acc = [], 0, 0, 0
    first_row = 1
    for i, (nrows, nbytes) in enumerate(groups):
        acc += nbytes
        rows += nrows
        if acc >= total * (len(parts) + 1) / n and i + 1 < len(groups):
            parts.append((start, i + 1, first_row))
            start, first_row = i + 1, rows + 1
    parts.append((start, len(groups), first_row))
    return tuple(parts) if len(parts) > 1 else ()


def _hf_splits(path: str) -> list:
    """[(name, Dataset)] of a saved HF dataset directory, splits in name order (memory-mapped Arrow)."""
    import datasets
    ds = datasets.load_from_disk(path)
    return [(name, ds[name]) for name in sorted(ds.keys())] if isinstance(ds, datasets.DatasetDict) else [("", ds)]


def _plan_hf(path: str, split_bytes: int, max_parts: int) -> tuple:
    """Equal row ranges across the splits, as many as the Arrow data's size asks for."""
    try:
        splits = _hf_splits(path)
    except Exception:
        return ()   # the reader reports an unloadable directory
    rows = sum(len(d) for _, d in splits)
    n = min(rows, _n_parts(sum(d.data.nbytes for _, d in splits), split_bytes, max_parts))
    if n <= 1:
        return ()
    cuts = [rows * i // n for i in range(n + 1)]
    return tuple((cuts[i], cuts[i + 1], cuts[i] + 1) for i in range(n))


@dataclass
class RawRecord:
    line: int                   # 1-based line (row) number
    obj: object = None          # decoded value when decoding worked
    raw: bytes | None = None    # the original bytes, when there were any
    error: str = ""             # a reasons.* constant when decoding failed
    message: str = ""           # what went wrong, for the ledger detail


def _kind(path: str) -> str | None:
    name = path.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def _is_hf_dir(path: str) -> bool:
    return any(os.path.isfile(os.path.join(path, m)) for m in HF_MARKERS)


def resolve_inputs(patterns: list[str]) -> list[InputFile]:
    """Expand paths, globs and directories into a deterministic list of inputs."""
    if not patterns:
        raise InputError("no input given: pass --input PATH (file, directory or glob) or set ingest.inputs")
    found: list[tuple[str, str]] = []
    for pat in patterns:
        matches = sorted(glob.glob(pat, recursive=True)) if glob.has_magic(pat) else [pat]
        if not matches:
            raise InputError(f"input {pat!r}: no file matches")
        for m in matches:
            if os.path.isdir(m):
                if _is_hf_dir(m):
                    found.append((m, "hf"))
                    continue
                inner = []
                for root, dirs, files in os.walk(m):
                    dirs.sort()
                    if _is_hf_dir(root) and root != m:
                        inner.append((root, "hf"))
                        dirs[:] = []
                        continue
                    for f in sorted(files):
                        p = os.path.join(root, f)
                        k = _kind(p)
                        if k:
                            inner.append((p, k))
                if not inner:
                    raise InputError(f"input directory {m!r} holds no .jsonl[.gz|.zst], .parquet or HF dataset")
                found.extend(inner)
            elif os.path.isfile(m):
                k = _kind(m)
                if k is None:
                    raise InputError(f"input {m!r}: unsupported file type "
                                     f"(expected .jsonl[.gz|.zst], .parquet or an HF datasets directory)")
                found.append((m, k))
            else:
                raise InputError(f"input {m!r}: no such file or directory")
    seen, unique = set(), []
    for p, k in found:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            unique.append((p, k))
    parents = [os.path.dirname(os.path.abspath(p)) if k != "hf" else os.path.dirname(os.path.abspath(p.rstrip("/")))
               for p, k in unique]
    base = os.path.commonpath(parents) if parents else ""
    return [InputFile(path=os.path.abspath(p), rel=os.path.relpath(os.path.abspath(p), base), kind=k)
            for p, k in unique]


# ---------------------------------------------------------------- record iterators

def iter_records(inp: InputFile, chunk_size: int = 1 << 20, part: tuple | None = None) -> Iterator[RawRecord]:
    """The records of a file, or of one part of it (`part` from `inp.parts`, numbered as in the whole file)."""
    if inp.kind == "jsonl":
        yield from _iter_jsonl(inp.path, chunk_size, *(part or (0, -1, 1)))
    elif inp.kind == "parquet":
        yield from _iter_parquet(inp.path, *(part or (0, -1, 1)))
    elif inp.kind == "hf":
        yield from _iter_hf(inp.path, *(part or (0, -1, 1))[:2])
    else:
        raise InputError(f"{inp.path}: unknown input kind {inp.kind!r}")


def _decode_line(lineno: int, line: bytes) -> RawRecord:
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        return RawRecord(lineno, raw=line, error=reasons.INVALID_JSON, message="blank line")
    try:
        return RawRecord(lineno, obj=orjson.loads(line), raw=line)
    except orjson.JSONDecodeError as e:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as ue:
            return RawRecord(lineno, raw=line, error=reasons.INVALID_UTF8,
                             message=f"invalid UTF-8 at byte {ue.start}")
        return RawRecord(lineno, raw=line, error=reasons.INVALID_JSON, message=str(e)[:200])


def _iter_jsonl(path: str, chunk_size: int, start: int = 0, end: int = -1, first_line: int = 1) -> Iterator[RawRecord]:
    lineno = first_line - 1
    splitter = LineSplitter()   # linear in a line's length, however long (a 100 MB line)
    try:
        fh = open_binary_read(path)
    except OSError as e:
        yield RawRecord(first_line, error=reasons.UNREADABLE_INPUT, message=f"cannot open: {e}")
        return
    left = end - start if end >= 0 else None    # bytes of this part (it ends right after a newline)
    with fh:
        if start:
            if fh.seekable():
                fh.seek(start)
            else:   # a compressed stream: decompress and drop what earlier parts read
                skip = start
                while skip:
                    got = fh.read(min(chunk_size, skip))
                    if not got:
                        break
                    skip -= len(got)
        while left is None or left > 0:
            try:
                chunk = fh.read(chunk_size if left is None else min(chunk_size, left))
                if left is not None:
                    left -= len(chunk)
            except (EOFError, OSError, zstandard.ZstdError, zlib.error) as e:
                # the stream is damaged: what was decoded so far counts, the tail is quarantined
                yield RawRecord(lineno + 1, raw=splitter.rest(), error=reasons.TRUNCATED_INPUT,
                                message=f"compressed stream ends early or is corrupt after line {lineno}: {e}")
                return
            if not chunk:
                break
            for line in splitter.feed(chunk):
                lineno += 1
                yield _decode_line(lineno, line)
    tail = splitter.rest()
    if tail:
        yield _decode_line(lineno + 1, tail)


def _iter_parquet(path: str, start: int = 0, end: int = -1, first_row: int = 1) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        yield RawRecord(first_row, error=reasons.UNREADABLE_INPUT, message=f"not a readable parquet file: {e}"[:300])
        return
    row = first_row - 1
    groups = None if (start, end) == (0, -1) else list(range(start, end))
    try:
        for batch in pf.iter_batches(batch_size=4096, row_groups=groups):
            for rec in batch.to_pylist():
                row += 1
                yield RawRecord(row, obj=rec)
    except Exception as e:
        yield RawRecord(row + 1, error=reasons.TRUNCATED_INPUT,
                        message=f"parquet file damaged after row {row}: {e}"[:300])


def _iter_hf(path: str, start: int = 0, end: int = -1) -> Iterator[RawRecord]:
    """Rows [start, end) (numbered across the splits in name order) of a saved HF dataset."""
    try:
        splits = _hf_splits(path)
    except Exception as e:
        yield RawRecord(1, error=reasons.UNREADABLE_INPUT, message=f"not a loadable HF dataset directory: {e}"[:300])
        return
    offset = 0
    for _, split in splits:
        lo = max(start - offset, 0)
        hi = len(split) if end < 0 else min(end - offset, len(split))
        if lo < hi:
            part = split if (lo, hi) == (0, len(split)) else split.select(range(lo, hi))
            row = offset + lo
            for batch in part.iter(batch_size=1024):
                keys = list(batch.keys())
                n = len(batch[keys[0]]) if keys else 0
                for i in range(n):
                    row += 1
                    yield RawRecord(row, obj={k: batch[k][i] for k in keys})
        offset += len(split)
