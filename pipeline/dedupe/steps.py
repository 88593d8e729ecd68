"""The four steps of the dedupe stage (see the package docstring for the picture)."""
from __future__ import annotations

import functools
import io
import os
import time
from pathlib import Path

import numba
import numpy as np
import xxhash

from common import reasons
from common.io import atomic_write_bytes
from common.progress import tick
from pipeline.block import Block
from pipeline.dedupe.minhash import MinHasher
from pipeline.shards import read_shard
from pipeline.context import RunContext, TaskContext
from pipeline.stage import ShardFilterStep, Step, TaskResult, shard_docs, shard_path

KIND_ID, KIND_EXACT, KIND_BAND0 = 0, 1, 2          # key kinds in the partition files
EDGE_ID, EDGE_EXACT, EDGE_NEAR = 0, 1, 2            # verified edge kinds
EDGE_NAMES = {EDGE_ID: "id", EDGE_EXACT: "exact", EDGE_NEAR: "near"}
SMALL_GROUP = 16                                    # all pairs below this size, star + chain above
BATCH = 8192
BUCKET_ROW_BYTES = 64          # a bucket task's peak bytes per key row (arrays, sort order, pairs)
BUCKET_TASK_DOCS = 50_000      # below this a bucket task's fixed cost (~10 ms) outweighs its work
READ_GAP_BYTES = 32 << 10     # NpyRows.rows reads through gaps smaller than this
MAX_PARTITIONS = 4096          # unless the memory budget needs more: every bucket task reads every shard


def work_dir(run: RunContext) -> Path:
    return run.stage_dir("dedupe") / "work"


def _save_npy(path: Path, arr: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def _exact_text(text: str, mode: str) -> bytes:
    if mode == "whitespace":
        text = " ".join(text.split())
    elif mode == "lower_whitespace":
        text = " ".join(text.lower().split())
    return text.encode("utf-8", "surrogatepass")


class DocIndex:
    """Dense document numbers across the input: shard order, then position in the shard (the order in
    which "the first document is kept"). Edges and decisions hold these numbers."""

    def __init__(self, shards: list[dict]):
        counts = np.array([int(s.get("docs", 0)) for s in shards], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.total = int(self.offsets[-1])
        # 4 bytes per edge end and per document in the cluster step up to 2^31 documents, 8 above
        self.dtype = np.int32 if self.total < 2**31 else np.int64

    def dense(self, shard_ord: int, pos: np.ndarray) -> np.ndarray:
        return self.offsets[shard_ord] + pos.astype(np.int64)

    def locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard ordinal, position) of dense numbers (an empty shard owns no number)."""
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        return shard, idx.astype(np.int64) - self.offsets[shard]

    def range_of(self, shard_ord: int) -> tuple[int, int]:
        return int(self.offsets[shard_ord]), int(self.offsets[shard_ord + 1])


def bucket_partitions(cfg, total_docs: int) -> int:
    """Band partitions (bucket tasks): `dedupe.partitions` when set, else sized from the data: enough
    that a task's key rows fit `dedupe.task_memory_mb`, and about BUCKET_TASK_DOCS documents a task so
    every core has work (at most MAX_PARTITIONS by that second rule). Never the worker count: the
    partition layout is part of the run's bytes."""
    if cfg.partitions:
        return cfg.partitions
    rows = total_docs * ((cfg.bands if cfg.near else 0) + 1 + int(cfg.exact))
    by_memory = -(-rows * BUCKET_ROW_BYTES // (cfg.task_memory_mb << 20))
    by_work = min(MAX_PARTITIONS, -(-total_docs // BUCKET_TASK_DOCS))
    return max(1, by_memory, by_work)


def doc_src(doc) -> str:
    """`file:line` of a document (the ledger id of a quarantined duplicate id)."""
    src = doc.provenance
    return f"{src.get('file', doc.source)}:{src.get('line', '')}"


def _save_strings(path: Path, values: list[str]) -> list[Path]:
    """Strings as one UTF-8 blob plus offsets: any row is read without reading the rest."""
    data = [v.encode("utf-8", "surrogatepass") for v in values]
    off = np.zeros(len(data) + 1, np.uint64)
    np.cumsum([len(d) for d in data], out=off[1:])
    return [atomic_write_bytes(Path(f"{path}.bin"), b"".join(data)), _save_npy(Path(f"{path}.off.npy"), off)]


class NpyRows:
    """Rows of a saved .npy array read with os.pread, the file opened per call. No memory map: the pages
    a task reads stay in the page cache and out of the process (mapped signatures scattered over every
    shard made a bucket task's resident size grow with the corpus: 1.8 GB at 3M documents for 160 MB of
    its own data), and no mapping to set up per shard and task."""

    _headers: dict = {}    # (path, size, mtime) -> (shape, dtype, data offset): a worker reads each header once

    def __init__(self, path: Path):
        self.path = path
        st = os.stat(path)
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in NpyRows._headers:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                if len(NpyRows._headers) > 100_000:
                    NpyRows._headers.clear()
                NpyRows._headers[key] = (shape, dtype, f.tell())
        self.shape, self.dtype, self.start = NpyRows._headers[key]
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, fd: int, lo: int, hi: int) -> np.ndarray:
        buf = os.pread(fd, (hi - lo) * self.row_bytes, self.start + lo * self.row_bytes)
        return np.frombuffer(buf, self.dtype).reshape((hi - lo,) + tuple(self.shape[1:]))

    def slice(self, lo: int, hi: int) -> np.ndarray:
        if hi <= lo:
            return np.zeros((0,) + tuple(self.shape[1:]), self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return self._read(fd, lo, hi)
        finally:
            os.close(fd)

    def rows(self, pos: np.ndarray) -> np.ndarray:
        """Rows at `pos` (any order, repeats allowed): one read per run of positions less than READ_GAP_BYTES
        apart (reading the rows between costs less than another call)."""
        out = np.empty((len(pos),) + tuple(self.shape[1:]), self.dtype)
        if not len(pos):
            return out
        order = np.argsort(pos, kind="stable")
        sp = np.asarray(pos)[order].astype(np.int64)
        cut = np.nonzero(np.diff(sp) * self.row_bytes > READ_GAP_BYTES)[0] + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a, b in zip([0, *cut.tolist()], [*cut.tolist(), len(sp)]):
                lo = int(sp[a])
                out[order[a:b]] = self._read(fd, lo, int(sp[b - 1]) + 1)[sp[a:b] - lo]
        finally:
            os.close(fd)
        return out


class StringColumn:
    def __init__(self, path: Path):
        self.off = NpyRows(Path(f"{path}.off.npy"))
        self.blob = Path(f"{path}.bin")

    def take(self, pos: np.ndarray) -> list[str]:
        pos = np.asarray(pos, np.int64)
        bounds = self.off.rows(np.concatenate([pos, pos + 1])).tolist()   # one pass over the offsets
        lo, hi = bounds[:len(pos)], bounds[len(pos):]
        fd = os.open(self.blob, os.O_RDONLY)
        try:
            return [os.pread(fd, b - a, a).decode("utf-8", "surrogatepass") for a, b in zip(lo, hi)]
        finally:
            os.close(fd)


# ---------------------------------------------------------------- 1. signatures

class SignatureStep(Step):
    name = "signatures"

    def __init__(self, input_stage: str, shards: list[dict]):
        self.input_stage = input_stage
        self.shards = shards

    def num_tasks(self, run):
        return len(self.shards)

    def docs_total(self, run, tasks):
        return shard_docs(self.shards, tasks)

    def run_task(self, task: TaskContext) -> TaskResult:
        t0 = time.perf_counter()
        cfg = task.config.dedupe
        shard = self.shards[task.index]
        name = shard["name"]
        out = work_dir(task.run) / "sig"
        parts = bucket_partitions(cfg, DocIndex(self.shards).total)
        hasher = MinHasher(cfg.bands, cfg.rows, cfg.shingle_size, cfg.seed)
        ids, srcs, exact_hi, exact_lo, sigs = [], [], [], [], []
        batch: list[str] = []

        def flush():
            if not batch:
                return
            if cfg.near:
                sigs.append(hasher.signatures(batch))
            batch.clear()

        for doc in read_shard(shard_path(task.run, self.input_stage, name)):
            ids.append(doc.id)
            srcs.append(doc_src(doc))
            digest = xxhash.xxh3_128_digest(_exact_text(doc.text, cfg.exact_normalize), seed=cfg.seed)
            exact_hi.append(int.from_bytes(digest[:8], "little"))
            exact_lo.append(int.from_bytes(digest[8:], "little"))
            batch.append(doc.text)
            tick()
            if len(batch) >= BATCH:
                flush()
        flush()
        n = len(ids)
        if n != int(shard.get("docs", -1)):
            raise RuntimeError(f"{self.input_stage} shard {name}: {n} documents read, its stats say "
                               f"{shard.get('docs')}; the input stage's output changed after it finished "
                               f"(re-run it: python -m pipeline run --from {self.input_stage} ...)")
        k = cfg.bands * cfg.rows
        sig = np.concatenate(sigs) if sigs else np.zeros((n, k if cfg.near else 0), np.uint32)
        id_keys = np.fromiter((xxhash.xxh3_64_intdigest(i.encode("utf-8", "surrogatepass"), seed=cfg.seed) for i in ids),
                              dtype=np.uint64, count=n)
        kinds, keys, pos = [np.full(n, KIND_ID, np.uint16)], [id_keys], [np.arange(n, dtype=np.uint32)]
        if cfg.exact:
            kinds.append(np.full(n, KIND_EXACT, np.uint16))
            keys.append(np.array(exact_hi, dtype=np.uint64))
            pos.append(np.arange(n, dtype=np.uint32))
        if cfg.near and n:
            band = hasher.band_keys(sig)                         # (n, bands)
            kinds.append(np.repeat((KIND_BAND0 + np.arange(cfg.bands)).astype(np.uint16)[None, :], n, 0).ravel())
            keys.append(band.ravel())
            pos.append(np.repeat(np.arange(n, dtype=np.uint32), cfg.bands))
        kind = np.concatenate(kinds)
        key = np.concatenate(keys)
        p = np.concatenate(pos)
        part = (key % np.uint64(parts)).astype(np.int64)
        order = np.lexsort((p, key, kind, part))
        offsets = np.searchsorted(part[order], np.arange(parts + 1)).astype(np.int64)
        outputs = [
            _save_npy(out / f"{name}.kind.npy", kind[order]),
            _save_npy(out / f"{name}.key.npy", key[order]),
            _save_npy(out / f"{name}.pos.npy", p[order]),
            _save_npy(out / f"{name}.part.npy", offsets),
            _save_npy(out / f"{name}.sig.npy", sig),
            _save_npy(out / f"{name}.exact.npy", np.array(exact_lo, dtype=np.uint64)),
            *_save_strings(out / f"{name}.ids", ids),
            *_save_strings(out / f"{name}.src", srcs),
        ]
        for o in outputs:
            task.add_output(o)
        return TaskResult(stats={"docs": n}, timing={"wall_s": round(time.perf_counter() - t0, 4)})


class ShardArrays:
    """Lazy access to the per-shard arrays the signature step wrote (NpyRows, StringColumn), by dense number."""

    def __init__(self, run: RunContext, shards: list[dict]):
        self.dir = work_dir(run) / "sig"
        self.names = [s["name"] for s in shards]
        self.index = DocIndex(shards)
        self._cache: dict = {}

    def get(self, ordinal: int, what: str):
        key = (ordinal, what)
        if key not in self._cache:
            path = self.dir / f"{self.names[ordinal]}.{what}"
            self._cache[key] = StringColumn(path) if what in ("ids", "src") else NpyRows(Path(f"{path}.npy"))
        return self._cache[key]

    def gather(self, idx: np.ndarray, what: str) -> np.ndarray:
        """Rows of array `what` for dense numbers `idx`, in the order of `idx`."""
        shard, pos = self.index.locate(idx)
        first = self.get(int(shard[0]), what) if len(idx) else None
        out = np.empty((len(idx),) + (first.shape[1:] if first is not None else ()),
                       dtype=first.dtype if first is not None else np.uint32)
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            out[sel] = self.get(int(s), what).rows(pos[sel])
        return out

    def strings(self, idx: np.ndarray, what: str) -> list[str]:
        """Ids (or sources) of dense numbers `idx`, in the order of `idx`, reading only those rows."""
        shard, pos = self.index.locate(idx)
        out: list = [None] * len(idx)
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            for i, v in zip(sel, self.get(int(s), what).take(pos[sel])):
                out[i] = v
        return out


# ---------------------------------------------------------------- 2. buckets

@functools.lru_cache(maxsize=SMALL_GROUP + 1)
def _pairs_after_first(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) of a group of `size` but those with its first member (already starred)."""
    ii, jj = np.triu_indices(size, 1)
    keep = ii > 0
    return ii[keep], jj[keep]


def _candidate_pairs(kind: np.ndarray, key: np.ndarray, g: np.ndarray):
    """(kind, a, b) candidate pairs, a < b, from runs of equal (kind, key); input sorted by (kind, key, g)."""
    n = len(key)
    if n < 2:
        return np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (kind[1:] != kind[:-1]) | (key[1:] != key[:-1])
    starts = np.nonzero(new_group)[0]
    sizes = np.diff(np.append(starts, n))
    group_of = np.repeat(np.arange(len(starts)), sizes)
    member = ~new_group                                   # every element but its group's first
    first = starts[group_of[member]]
    ks, a, b = [kind[member]], [g[first]], [g[member]]     # star to the group's first (smallest)
    for s, size in zip(starts[sizes > 2], sizes[sizes > 2]):
        members = g[s:s + size]
        if size <= SMALL_GROUP:
            ii, jj = _pairs_after_first(int(size))
        else:                                               # big group: add a chain
            ii, jj = np.arange(1, size - 1), np.arange(2, size)
        ks.append(np.full(len(ii), kind[s], np.uint16))
        a.append(members[ii])
        b.append(members[jj])
    return np.concatenate(ks), np.concatenate(a), np.concatenate(b)


class BucketStep(Step):
    name = "buckets"

    def __init__(self, shards: list[dict]):
        self.shards = shards

    def num_tasks(self, run):
        return bucket_partitions(run.config.dedupe, DocIndex(self.shards).total)

    def run_task(self, task: TaskContext) -> TaskResult:
        t0 = time.perf_counter()
        cfg = task.config.dedupe
        p = task.index
        arrays = ShardArrays(task.run, self.shards)
        kinds, keys, gs = [], [], []
        for s in range(len(self.shards)):
            lo, hi = arrays.get(s, "part").slice(p, p + 2).tolist()
            if hi > lo:
                kinds.append(arrays.get(s, "kind").slice(lo, hi))
                keys.append(arrays.get(s, "key").slice(lo, hi))
                gs.append(arrays.index.dense(s, arrays.get(s, "pos").slice(lo, hi)))
        edges = {EDGE_ID: [], EDGE_EXACT: [], EDGE_NEAR: []}
        candidates = {"id": 0, "exact": 0, "near": 0}
        if kinds:
            kind, key, g = np.concatenate(kinds), np.concatenate(keys), np.concatenate(gs)
            del kinds, keys, gs
            order = np.lexsort((g, key, kind))
            k, a, b = _candidate_pairs(kind[order], key[order], g[order])
            del kind, key, g, order
            for edge_kind, mask in ((EDGE_ID, k == KIND_ID), (EDGE_EXACT, k == KIND_EXACT), (EDGE_NEAR, k >= KIND_BAND0)):
                pa_, pb_ = a[mask], b[mask]
                if len(pa_) == 0:
                    continue
                pairs = np.unique(np.stack([pa_, pb_], axis=1), axis=0)   # a pair found by several bands once
                candidates[EDGE_NAMES[edge_kind]] = int(len(pairs))
                edges[edge_kind].append(self._verify(edge_kind, pairs, arrays, cfg))
        counts = {}
        for edge_kind, found in edges.items():
            e = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
            counts[EDGE_NAMES[edge_kind]] = int(len(e))
            path = work_dir(task.run) / "edges" / f"{p:05d}.{EDGE_NAMES[edge_kind]}.npy"
            task.add_output(_save_npy(path, e.astype(arrays.index.dtype)))
        return TaskResult(stats={"candidates": candidates, "edges": counts},
                          timing={"wall_s": round(time.perf_counter() - t0, 4)})

    @staticmethod
    def _verify(edge_kind: int, pairs: np.ndarray, arrays: ShardArrays, cfg) -> np.ndarray:
        a, b = pairs[:, 0], pairs[:, 1]
        if edge_kind == EDGE_ID:
            ok = np.array([x == y for x, y in zip(arrays.strings(a, "ids"), arrays.strings(b, "ids"))], dtype=bool)
        elif edge_kind == EDGE_EXACT:
            ok = arrays.gather(a, "exact") == arrays.gather(b, "exact")    # second 64 bits of the 128-bit hash
        else:
            if cfg.threshold <= 0:
                return pairs
            ok = np.zeros(len(pairs), dtype=bool)
            for lo in range(0, len(pairs), 65536):
                sa = arrays.gather(a[lo:lo + 65536], "sig")
                sb = arrays.gather(b[lo:lo + 65536], "sig")
                ok[lo:lo + 65536] = (sa == sb).mean(axis=1) >= cfg.threshold
        return pairs[ok]


# ---------------------------------------------------------------- 3. clusters

@numba.njit(cache=True)
def _union(parent: np.ndarray, ea: np.ndarray, eb: np.ndarray) -> None:
    """Join the components of every edge; a root is always its component's smallest number, so
    parent[i] <= i holds throughout (what lets _flatten finish in one pass)."""
    for i in range(ea.shape[0]):
        x, y = ea[i], eb[i]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y


@numba.njit(cache=True)
def _flatten(parent: np.ndarray) -> None:
    for i in range(parent.shape[0]):      # parent[i] <= i: every parent is final before its children
        parent[i] = parent[parent[i]]


@numba.njit(cache=True)
def _reset(parent: np.ndarray) -> None:
    for i in range(parent.shape[0]):
        parent[i] = i


@numba.njit(cache=True)
def _members(parent: np.ndarray) -> np.ndarray:
    """Numbers whose root is another document (after _flatten), ascending."""
    count = 0
    for i in range(parent.shape[0]):
        if parent[i] != i:
            count += 1
    out = np.empty(count, np.int64)
    j = 0
    for i in range(parent.shape[0]):
        if parent[i] != i:
            out[j] = i
            j += 1
    return out


def connect(parent: np.ndarray, chunks, keep=None) -> tuple[np.ndarray, np.ndarray]:
    """Components of the edges in `chunks` (an iterable of (a, b) arrays) over len(parent) nodes,
    `keep(a, b)` choosing or mapping each chunk's edges first. Returns (every node whose root is
    another node, ascending; that root, its component's smallest node); `parent` holds every root."""
    _reset(parent)
    for a, b in chunks:
        a, b = a.astype(parent.dtype), b.astype(parent.dtype)
        if keep is not None:
            a, b = keep(a, b)
        _union(parent, a, b)
    _flatten(parent)
    members = _members(parent)
    return members, parent[members].astype(np.int64)


def edge_chunks(path: Path, rows: int):
    """(a, b) of an edge file, `rows` edges at a time (read, not mapped: never the whole file in memory)."""
    e = NpyRows(path)
    for lo in range(0, len(e), rows):
        chunk = e.slice(lo, min(lo + rows, len(e)))
        yield chunk[:, 0], chunk[:, 1]


class ClusterStep(Step):
    """One task, streaming. Memory: a parent array over every document (4 bytes each up to 2^31
    documents, 8 above), a second one for the exact representatives, one state byte, and the removed
    documents' numbers; edges stream from the bucket files `dedupe.task_memory_mb` at a time, never all
    at once. Union by smallest number makes the result independent of edge order and chunking."""

    name = "clusters"

    def __init__(self, shards: list[dict]):
        self.shards = shards

    def num_tasks(self, run):
        return 1

    def run_task(self, task: TaskContext) -> TaskResult:
        t0 = time.perf_counter()
        cfg = task.config.dedupe
        wd = work_dir(task.run)
        index = DocIndex(self.shards)
        n, dt = index.total, index.dtype
        parts = bucket_partitions(cfg, n)
        rows = max(1 << 16, (cfg.task_memory_mb << 20) // 32)   # an edge chunk and its temporaries
        state = np.zeros(n, np.int8)                             # 1 = quarantined (a repeated id)
        parent = np.empty(n, dt)

        def components(kind: str, keep):
            files = [wd / "edges" / f"{p:05d}.{kind}.npy" for p in range(parts)]
            return connect(parent, (ab for f in files for ab in edge_chunks(f, rows)), keep)

        def alive(a, b):
            ok = (state[a] == 0) & (state[b] == 0)
            return a[ok], b[ok]

        # 1. a repeated id: the first record keeps it, later ones are quarantined
        q_idx, q_to = components("id", None)
        state[q_idx] = 1
        # 2. exact text among the rest: the first copy is the representative
        x_idx, x_to = components("exact", alive)
        rep = parent.copy()                  # every document's exact representative (itself if none)

        # 3. near: among exact representatives only; a cluster keeps its first document
        def reps(a, b):
            a, b = alive(a, b)
            return rep[a], rep[b]
        n_idx, n_to = components("near", reps)
        rep = parent = state = None          # 9 bytes a document, freed before the outputs are built

        idx = np.concatenate([q_idx, x_idx, n_idx])
        kind = np.concatenate([np.full(len(q_idx), 0, np.int8), np.full(len(x_idx), 1, np.int8),
                               np.full(len(n_idx), 2, np.int8)])
        to = np.concatenate([q_to, x_to, n_to])
        order = np.argsort(idx, kind="stable")                   # the three sets are disjoint
        near_roots, sizes = np.unique(n_to, return_counts=True)
        cluster = np.full(len(idx), -1, np.int64)
        cluster[len(q_idx) + len(x_idx):] = np.searchsorted(near_roots, n_to)
        out = wd / "decisions"
        for col, arr in (("idx", idx), ("kind", kind), ("to", to), ("cluster", cluster)):
            task.add_output(_save_npy(out / f"{col}.npy", arr[order]))
        return TaskResult(stats={"clusters": {
            "duplicate_ids": int(len(q_idx)), "exact_groups": int(len(np.unique(x_to))),
            "exact_removed": int(len(x_idx)), "near_clusters": int(len(near_roots)),
            "near_removed": int(len(n_idx)), "largest_near_cluster": int(sizes.max()) + 1 if len(sizes) else 0}},
            timing={"wall_s": round(time.perf_counter() - t0, 4)})


# ---------------------------------------------------------------- 4. filter

class DecisionFilter(Block):
    """Drops the documents the cluster step decided on, with their reason and detail (the kept
    document's id, the cluster, the estimated Jaccard): built here, per shard and in parallel, from
    the decision arrays and the signature step's random-access columns."""

    name = "dedupe_filter"

    def __init__(self, run: RunContext, shards: list[dict], ordinal: int):
        d = work_dir(run) / "decisions"
        arrays = ShardArrays(run, shards)
        numbers = np.load(d / "idx.npy", mmap_mode="r", allow_pickle=False)   # a binary search reads a few pages
        lo, hi = np.searchsorted(numbers, arrays.index.range_of(ordinal)).tolist()
        idx, kind, to, cluster = (NpyRows(d / f"{c}.npy").slice(lo, hi) for c in ("idx", "kind", "to", "cluster"))
        to_ids = arrays.strings(to, "ids")
        first_src = dict(zip(np.nonzero(kind == 0)[0].tolist(), arrays.strings(to[kind == 0], "src")))
        near = np.nonzero(kind == 2)[0]
        jacc = {}
        if len(near):
            same = arrays.gather(idx[near], "sig") == arrays.gather(to[near], "sig")
            jacc = dict(zip(near.tolist(), same.mean(axis=1).tolist()))
        self.decisions = {}
        for i, pos in enumerate(arrays.index.locate(idx)[1].tolist()):
            if kind[i] == 0:
                self.decisions[pos] = (0, {"first": first_src[i]})
            elif kind[i] == 1:
                self.decisions[pos] = (1, {"duplicate_of": to_ids[i]})
            else:
                self.decisions[pos] = (2, {"duplicate_of": to_ids[i], "cluster": int(cluster[i]),
                                           "jaccard_est": round(jacc[i], 3)})

    def run(self, docs, task):
        for pos, doc in enumerate(docs):
            dec = self.decisions.pop(pos, None)
            if dec is None:
                yield doc
                continue
            kind, detail = dec
            if kind == 0:
                task.quarantine(doc_src(doc), reasons.DUPLICATE_ID, {"id": doc.id, **detail, **doc.origin()})
            else:
                reason = reasons.EXACT_DUPLICATE if kind == 1 else reasons.NEAR_DUPLICATE
                task.remove(doc.id, reason, {**detail, **doc.origin()})  # origin: the audit's per-file tables
        if self.decisions:
            raise RuntimeError(f"dedupe decisions name positions beyond the shard: {sorted(self.decisions)[:5]}")


class FilterStep(ShardFilterStep):
    def filter_blocks(self, task):
        return [DecisionFilter(task.run, self.shards, task.index)]
