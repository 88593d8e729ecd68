"""Compressed JSONL, canonical JSON, atomic writes and file digests.

Every writer here is deterministic: the same records give the same bytes (zstd level fixed,
single-threaded; gzip mtime 0; JSON with sorted keys).
"""
from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator

import orjson
import zstandard

ZSTD_LEVEL = 3
_UMASK = os.umask(0)
os.umask(_UMASK)


def canonical_json(obj) -> str:
    """JSON with sorted keys and no whitespace: equal objects give equal strings."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def json_bytes(obj, indent: bool = False) -> bytes:
    opts = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(obj, option=opts) + (b"\n" if indent else b"")


def compression_of(path: str | os.PathLike) -> str:
    name = str(path)
    if name.endswith(".zst"):
        return "zstd"
    if name.endswith(".gz"):
        return "gzip"
    return "none"


@contextlib.contextmanager
def naming(path: str | os.PathLike):
    """Re-raise an OSError that names no file as one naming `path`.

    A write or flush that hits a full disk (ENOSPC) or the file-size limit (EFBIG) raises
    "[Errno 28] No space left on device" with no file name, from zstd, gzip, pyarrow or plain
    writes alike; the user must learn which file could not be written.
    """
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        code = e.errno
        if code is None:   # pyarrow: "... Detail: [errno 28] No space left on device"
            m = re.search(r"\[errno (\d+)\]", str(e), re.IGNORECASE)
            code = int(m.group(1)) if m else None
        if code is None:
            raise OSError(f"{e} (writing {path})") from e
        raise OSError(code, os.strerror(code), str(path)) from e


class TruncatedStreamError(EOFError):
    """A compressed stream ended before its last frame was complete."""


class _FrameReader(io.RawIOBase):
    """Streaming decompressor that hands out every decoded byte, then raises on a truncated frame.

    zstandard's stream_reader returns a quiet EOF when input stops mid-frame, and GzipFile drops
    the bytes decoded in the read call that hits the damage; either would lose data silently.
    """

    def __init__(self, raw: IO[bytes], chunk: int = 1 << 20):
        self._raw = raw
        self._chunk = chunk
        self._obj = self._new()
        self._started = False
        self._buf = b""          # decoded bytes; those from _off on are not handed out yet
        self._off = 0
        self._truncated = False

    def _new(self):
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        pending = len(self._buf) - self._off
        if n >= 0 and pending >= n:
            # served from what is decoded, without copying the rest: one highly compressed block
            # can decode to a 100 MB line, and re-slicing it on every read would be quadratic
            out = self._buf[self._off:self._off + n]
            self._off += n
            return out
        if self._truncated and not pending:
            raise TruncatedStreamError(f"{self.kind} stream ends in the middle of a frame")
        pieces, have = [self._buf[self._off:]], pending
        self._buf, self._off = b"", 0
        while n < 0 or have < n:
            block = self._raw.read(self._chunk)
            if not block:
                if self._started and not self._obj.eof:
                    self._truncated = True   # hand out what was decoded; raise on the next read
                    if not have:
                        raise TruncatedStreamError(f"{self.kind} stream ends in the middle of a frame")
                break
            while block:
                self._started = True
                piece = self._obj.decompress(block)
                pieces.append(piece)
                have += len(piece)
                block = self._obj.unused_data if self._obj.eof else b""
                if self._obj.eof:            # next frame / gzip member, if any
                    self._obj = self._new()
                    self._started = False
        data = b"".join(pieces)
        if n < 0 or len(data) <= n:
            return data
        self._buf, self._off = data, n
        return data[:n]

    def close(self) -> None:
        self._raw.close()
        super().close()


class ZstdFrameReader(_FrameReader):
    kind = "zstd"

    def _new(self):
        return zstandard.ZstdDecompressor().decompressobj()


class GzipMemberReader(_FrameReader):
    kind = "gzip"

    def _new(self):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)


def open_binary_read(path: str | os.PathLike) -> IO[bytes]:
    """Open a possibly compressed file for streaming reads (damage surfaces as an error on read)."""
    kind = compression_of(path)
    raw = open(path, "rb")
    if kind == "zstd":
        return ZstdFrameReader(raw)
    if kind == "gzip":
        return GzipMemberReader(raw)
    return raw


class LineSplitter:
    """Chunks in, complete lines out, in linear time however long a line is: the pieces of a line
    are joined once, when its newline arrives (`pending += chunk` would copy it for every chunk)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            if chunk:
                self._parts.append(chunk)
            return []
        self._parts.append(pieces[0])
        lines = [b"".join(self._parts), *pieces[1:-1]]
        self._parts = [pieces[-1]] if pieces[-1] else []
        return lines

    def rest(self) -> bytes:
        """The bytes after the last newline (a last line without one, or a cut-off tail)."""
        return b"".join(self._parts)


def iter_lines(path: str | os.PathLike, chunk_size: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, raw line bytes without the newline).

    Reads in chunks so a 100 MB line costs 100 MB, not more; a truncated compressed stream
    raises the decompressor's error after the lines that were intact.
    """
    with open_binary_read(path) as fh:
        splitter = LineSplitter()
        lineno = 0
        while chunk := fh.read(chunk_size):
            for line in splitter.feed(chunk):
                lineno += 1
                yield lineno, line
        tail = splitter.rest()
        if tail:
            yield lineno + 1, tail


class ZstdLineWriter:
    """Write lines into a .zst file through a temp file; `close()` renames it into place."""

    def __init__(self, path: str | os.PathLike, level: int = ZSTD_LEVEL):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with naming(self.path):
            self._raw = open(self._tmp, "wb")
        self._zw = zstandard.ZstdCompressor(level=level, threads=0).stream_writer(self._raw, closefd=False)
        self.count = 0

    def write_line(self, line: bytes | str) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8")
        with naming(self.path):
            self._zw.write(line + b"\n")
        self.count += 1

    def close(self) -> Path:
        with naming(self.path):
            self._zw.flush(zstandard.FLUSH_FRAME)
            self._zw.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._zw.close()
        with contextlib.suppress(Exception):
            self._raw.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> "ZstdLineWriter":
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl_zst(path: str | os.PathLike, records: Iterable[dict]) -> int:
    with ZstdLineWriter(path) as w:
        for rec in records:
            w.write_line(orjson.dumps(rec, option=orjson.OPT_SORT_KEYS))
        return w.count


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    for _, line in iter_lines(path):
        if line.strip():
            yield orjson.loads(line)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write via temp file + fsync + rename, so a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)   # mkstemp makes 0600; outputs are for reviewers too
        with naming(path):
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj, indent: bool = True) -> Path:
    return atomic_write_bytes(path, json_bytes(obj, indent=indent))


def read_json(path: str | os.PathLike):
    with open(path, "rb") as fh:
        return orjson.loads(fh.read())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temp path beside `path`; on success it is renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with naming(path):
            yield tmp
            if tmp.is_file():
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


# The temp names of every writer here: `.<name>.tmp-<pid>` and `.<name>.<random>.tmp`; a writer of a
# directory (zarr) uses the first form, so only that form is swept as a directory.
_TEMP_NAME = re.compile(r"^\..+\.tmp(-\d+)?$")
_TEMP_DIR_NAME = re.compile(r"^\..+\.tmp-\d+$")


def is_temp_name(name: str) -> bool:
    return bool(_TEMP_NAME.match(name))


def sweep_temp_files(root: str | os.PathLike) -> list[Path]:
    """Delete the temp files and directories a killed writer left under `root` (it died before its rename).

    Call it only where no writer of this run can be active (before a run's stages start, after a
    stage's tasks are all done): a temp file then belongs to a dead process and is never an output.
    """
    import shutil
    removed = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for dirpath, dirs, files in os.walk(root):
        for d in [d for d in dirs if _TEMP_DIR_NAME.match(d)]:
            dirs.remove(d)
            p = Path(dirpath, d)
            if not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        for f in files:
            if is_temp_name(f):
                p = Path(dirpath, f)
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(p)
    return removed
