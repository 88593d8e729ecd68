"""The four steps of the dedupe stage (see the package docstring for the picture)."""
from __future__ import annotations

import io
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from common import reasons
from common.io import atomic_write_bytes, canonical_json
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


def work_dir(run: RunContext) -> Path:
    return run.stage_dir("dedupe") / "work"


def _save_npy(path: Path, arr: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def _load_npy(path: Path, mmap: bool = True) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _exact_text(text: str, mode: str) -> bytes:
    if mode == "whitespace":
        text = " ".join(text.split())
    elif mode == "lower_whitespace":
        text = " ".join(text.lower().split())
    return text.encode("utf-8", "surrogatepass")


def gidx_of(shard_ord: int, pos: np.ndarray) -> np.ndarray:
    return (np.uint64(shard_ord) << np.uint64(32)) | pos.astype(np.uint64)


def split_gidx(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (g >> np.uint64(32)).astype(np.int64), (g & np.uint64(0xFFFFFFFF)).astype(np.int64)


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
        cfg = task.config.dedupe
        name = self.shards[task.index]["name"]
        out = work_dir(task.run) / "sig"
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
            src = doc.provenance
            srcs.append(f"{src.get('file', doc.source)}:{src.get('line', '')}")
            digest = xxhash.xxh3_128_digest(_exact_text(doc.text, cfg.exact_normalize), seed=cfg.seed)
            exact_hi.append(int.from_bytes(digest[:8], "little"))
            exact_lo.append(int.from_bytes(digest[8:], "little"))
            batch.append(doc.text)
            tick()
            if len(batch) >= BATCH:
                flush()
        flush()
        n = len(ids)
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
        part = (key % np.uint64(cfg.partitions)).astype(np.int64)
        order = np.lexsort((p, key, kind, part))
        offsets = np.searchsorted(part[order], np.arange(cfg.partitions + 1)).astype(np.int64)
        outputs = [
            _save_npy(out / f"{name}.kind.npy", kind[order]),
            _save_npy(out / f"{name}.key.npy", key[order]),
            _save_npy(out / f"{name}.pos.npy", p[order]),
            _save_npy(out / f"{name}.part.npy", offsets),
            _save_npy(out / f"{name}.sig.npy", sig),
            _save_npy(out / f"{name}.exact.npy", np.array(exact_lo, dtype=np.uint64)),
        ]
        table = pa.table({"id": pa.array(ids, pa.string()), "src": pa.array(srcs, pa.string())})
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd", write_statistics=False)
        outputs.append(atomic_write_bytes(out / f"{name}.ids.parquet", buf.getvalue()))
        for o in outputs:
            task.add_output(o)
        return TaskResult(stats={"docs": n})


class ShardArrays:
    """Lazy, memory-mapped access to the per-shard arrays written by the signature step."""

    def __init__(self, run: RunContext, shards: list[dict]):
        self.dir = work_dir(run) / "sig"
        self.names = [s["name"] for s in shards]
        self._cache: dict = {}

    def get(self, ordinal: int, what: str):
        key = (ordinal, what)
        if key not in self._cache:
            name = self.names[ordinal]
            if what in ("ids", "src"):
                # an Arrow column (compact, memory-mapped file), never a Python list of every id
                t = pq.read_table(self.dir / f"{name}.ids.parquet", memory_map=True)
                self._cache[(ordinal, "ids")] = t.column("id")
                self._cache[(ordinal, "src")] = t.column("src")
            else:
                self._cache[key] = _load_npy(self.dir / f"{name}.{what}.npy")
        return self._cache[key]

    def gather(self, g: np.ndarray, what: str) -> np.ndarray:
        """Rows of array `what` for global indices `g`, in the order of `g`."""
        shard, pos = split_gidx(g)
        first = self.get(int(shard[0]), what) if len(g) else None
        out = np.empty((len(g),) + (first.shape[1:] if first is not None else ()),
                       dtype=first.dtype if first is not None else np.uint32)
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            out[sel] = self.get(int(s), what)[pos[sel]]
        return out

    def strings(self, g: np.ndarray, what: str) -> list[str]:
        """Ids (or sources) of global indices `g`, in the order of `g`, reading only those rows."""
        shard, pos = split_gidx(g)
        out: list = [None] * len(g)
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            values = self.get(int(s), what).take(pa.array(pos[sel])).to_pylist()
            for i, v in zip(sel, values):
                out[i] = v
        return out


# ---------------------------------------------------------------- 2. buckets

def _candidate_pairs(kind: np.ndarray, key: np.ndarray, g: np.ndarray):
    """(kind, a, b) candidate pairs, a < b, from runs of equal (kind, key); input sorted by (kind, key, g)."""
    n = len(key)
    if n < 2:
        return np.zeros(0, np.uint16), np.zeros(0, np.uint64), np.zeros(0, np.uint64)
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
            ii, jj = np.triu_indices(size, 1)
            keep = ii > 0                                   # pairs with the first are already in
            ii, jj = ii[keep], jj[keep]
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
        return run.config.dedupe.partitions

    def run_task(self, task: TaskContext) -> TaskResult:
        cfg = task.config.dedupe
        p = task.index
        arrays = ShardArrays(task.run, self.shards)
        kinds, keys, gs = [], [], []
        for s in range(len(self.shards)):
            off = arrays.get(s, "part")
            lo, hi = int(off[p]), int(off[p + 1])
            if hi > lo:
                kinds.append(np.asarray(arrays.get(s, "kind")[lo:hi]))
                keys.append(np.asarray(arrays.get(s, "key")[lo:hi]))
                gs.append(gidx_of(s, np.asarray(arrays.get(s, "pos")[lo:hi])))
        edges = {EDGE_ID: [], EDGE_EXACT: [], EDGE_NEAR: []}
        candidates = {"id": 0, "exact": 0, "near": 0}
        if kinds:
            kind, key, g = np.concatenate(kinds), np.concatenate(keys), np.concatenate(gs)
            order = np.lexsort((g, key, kind))
            k, a, b = _candidate_pairs(kind[order], key[order], g[order])
            for edge_kind, mask in ((EDGE_ID, k == KIND_ID), (EDGE_EXACT, k == KIND_EXACT), (EDGE_NEAR, k >= KIND_BAND0)):
                pa_, pb_ = a[mask], b[mask]
                if len(pa_) == 0:
                    continue
                pairs = np.unique(np.stack([pa_, pb_], axis=1), axis=0)   # a pair found by several bands once
                candidates[EDGE_NAMES[edge_kind]] = int(len(pairs))
                edges[edge_kind].append(self._verify(edge_kind, pairs, arrays, cfg))
        out = work_dir(task.run) / "edges" / f"{p:05d}.npy"
        stacked = []
        counts = {}
        for edge_kind, parts in edges.items():
            e = np.concatenate(parts) if parts else np.zeros((0, 2), np.uint64)
            counts[EDGE_NAMES[edge_kind]] = int(len(e))
            stacked.append(np.column_stack([np.full(len(e), edge_kind, np.uint64), e]) if len(e) else
                           np.zeros((0, 3), np.uint64))
        task.add_output(_save_npy(out, np.concatenate(stacked)))
        return TaskResult(stats={"candidates": candidates, "edges": counts})

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
def _components(n: int, ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
    """Root of every node; the root of a component is its smallest index."""
    parent = np.arange(n)
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
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        parent[i] = r
    return parent


def union_find(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, root of each node) for the graph of edges a-b over uint64 node ids."""
    nodes = np.unique(np.concatenate([a, b]))
    ia, ib = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    roots = _components(len(nodes), ia.astype(np.int64), ib.astype(np.int64))
    return nodes, nodes[roots]


DECISION_SCHEMA = pa.schema([("pos", pa.uint32()), ("decision", pa.string()), ("reason", pa.string()),
                             ("ledger_id", pa.string()), ("detail", pa.string())])


class ClusterStep(Step):
    name = "clusters"

    def __init__(self, shards: list[dict]):
        self.shards = shards

    def num_tasks(self, run):
        return 1

    def run_task(self, task: TaskContext) -> TaskResult:
        cfg = task.config.dedupe
        wd = work_dir(task.run)
        arrays = ShardArrays(task.run, self.shards)
        parts = [_load_npy(wd / "edges" / f"{p:05d}.npy", mmap=False) for p in range(cfg.partitions)]
        e = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint64)
        kind, a, b = e[:, 0], e[:, 1], e[:, 2]
        empty = np.zeros(0, np.uint64)
        removed_g, removed_kind, removed_to = [empty], [np.zeros(0, np.int8)], [empty]

        # 1. a repeated id: the first record keeps it, later ones are quarantined
        m = kind == EDGE_ID
        quarantined = empty
        if m.any():
            nodes, roots = union_find(a[m], b[m])
            sel = nodes != roots
            quarantined = nodes[sel]
            removed_g.append(nodes[sel]); removed_kind.append(np.full(sel.sum(), 0, np.int8)); removed_to.append(roots[sel])
        alive = lambda x: ~np.isin(x, quarantined)

        # 2. exact text: the first copy is the representative
        m = (kind == EDGE_EXACT)
        m &= alive(a) & alive(b)
        ex_nodes, ex_roots = empty, empty
        exact_groups = 0
        if m.any():
            ex_nodes, ex_roots = union_find(a[m], b[m])
            sel = ex_nodes != ex_roots
            exact_groups = int(len(np.unique(ex_roots)))
            removed_g.append(ex_nodes[sel]); removed_kind.append(np.full(sel.sum(), 1, np.int8)); removed_to.append(ex_roots[sel])

        # 3. near: among exact representatives only; a cluster keeps its first document
        m = (kind == EDGE_NEAR)
        m &= alive(a) & alive(b)
        near_clusters, largest = 0, 0
        cluster_ids = {}
        if m.any():
            def rep(x):
                i = np.searchsorted(ex_nodes, x)
                i = np.minimum(i, max(len(ex_nodes) - 1, 0))
                hit = (len(ex_nodes) > 0) & (ex_nodes[i] == x) if len(ex_nodes) else np.zeros(len(x), bool)
                return np.where(hit, ex_roots[i] if len(ex_nodes) else x, x)
            ra, rb = rep(a[m]), rep(b[m])
            keep = ra != rb
            if keep.any():
                nodes, roots = union_find(ra[keep], rb[keep])
                sel = nodes != roots
                uniq, counts = np.unique(roots, return_counts=True)
                near_clusters, largest = int(len(uniq)), int(counts.max())
                cluster_ids = {int(r): i for i, r in enumerate(uniq)}
                removed_g.append(nodes[sel]); removed_kind.append(np.full(sel.sum(), 2, np.int8)); removed_to.append(roots[sel])

        g = np.concatenate(removed_g)
        rk = np.concatenate(removed_kind)
        to = np.concatenate(removed_to)
        order = np.argsort(g, kind="stable")
        g, rk, to = g[order], rk[order], to[order]
        near_sel = rk == 2
        jacc = np.zeros(len(g), np.float64)
        if near_sel.any():
            jacc[near_sel] = (arrays.gather(g[near_sel], "sig") == arrays.gather(to[near_sel], "sig")).mean(axis=1)
        to_ids = arrays.strings(to, "ids")
        own_src = arrays.strings(g, "src")
        own_ids = arrays.strings(g, "ids")
        first_src = dict(zip(np.nonzero(rk == 0)[0], arrays.strings(to[rk == 0], "src")))
        shard_of, pos_of = split_gidx(g)
        per_shard: dict[int, list] = {}
        for i in range(len(g)):
            if rk[i] == 0:
                row = (reasons.QUARANTINED, reasons.DUPLICATE_ID, own_src[i],
                       {"id": own_ids[i], "first": first_src[i]})
            elif rk[i] == 1:
                row = (reasons.REMOVED, reasons.EXACT_DUPLICATE, own_ids[i], {"duplicate_of": to_ids[i]})
            else:
                row = (reasons.REMOVED, reasons.NEAR_DUPLICATE, own_ids[i],
                       {"duplicate_of": to_ids[i], "cluster": cluster_ids[int(to[i])],
                        "jaccard_est": round(float(jacc[i]), 3)})
            per_shard.setdefault(int(shard_of[i]), []).append((int(pos_of[i]),) + row)
        for s, shard in enumerate(self.shards):
            rows = per_shard.get(s, [])
            table = pa.table({
                "pos": pa.array([r[0] for r in rows], pa.uint32()),
                "decision": pa.array([r[1] for r in rows], pa.string()),
                "reason": pa.array([r[2] for r in rows], pa.string()),
                "ledger_id": pa.array([r[3] for r in rows], pa.string()),
                "detail": pa.array([canonical_json(r[4]) for r in rows], pa.string()),
            }, schema=DECISION_SCHEMA)
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd", write_statistics=False)
            task.add_output(atomic_write_bytes(wd / "decisions" / f"{shard['name']}.parquet", buf.getvalue()))
        return TaskResult(stats={"clusters": {
            "duplicate_ids": int((rk == 0).sum()), "exact_groups": exact_groups,
            "exact_removed": int((rk == 1).sum()), "near_clusters": near_clusters,
            "near_removed": int((rk == 2).sum()), "largest_near_cluster": largest}})


# ---------------------------------------------------------------- 4. filter

class DecisionFilter(Block):
    """Drops the documents the cluster step decided on, with their reason and detail."""

    name = "dedupe_filter"

    def __init__(self, decisions_path: Path):
        t = pq.read_table(decisions_path, schema=DECISION_SCHEMA)
        self.decisions = {p: (d, r, i, det) for p, d, r, i, det in zip(
            t.column("pos").to_pylist(), t.column("decision").to_pylist(), t.column("reason").to_pylist(),
            t.column("ledger_id").to_pylist(), t.column("detail").to_pylist())}

    def run(self, docs, task):
        import orjson
        for pos, doc in enumerate(docs):
            dec = self.decisions.pop(pos, None)
            if dec is None:
                yield doc
                continue
            decision, reason, ledger_id, detail = dec
            detail = {**orjson.loads(detail), **doc.origin()}   # the audit's per-file tables read it
            if decision == reasons.QUARANTINED:
                task.quarantine(ledger_id, reason, detail)
            else:
                task.remove(ledger_id, reason, detail)
        if self.decisions:
            raise RuntimeError(f"dedupe decisions name positions beyond the shard: {sorted(self.decisions)[:5]}")


class FilterStep(ShardFilterStep):
    def filter_blocks(self, task):
        return [DecisionFilter(work_dir(task.run) / "decisions" / f"{self.shard_name(task)}.parquet")]
