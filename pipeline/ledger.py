"""The one writer of ledger rows and the books of a stage.

Ledger: `RUN_DIR/<stage>/ledger/*.parquet`, one row per document the stage received, columns
`id` (string), `decision` (kept|removed|quarantined), `reason` (string, empty when kept),
`detail` (canonical JSON string). Books: `in == kept + sum(removed) + sum(quarantined)`,
checked at the end of every task and every stage; a mismatch raises.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from common import reasons
from common.io import canonical_json, naming

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("decision", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
])
_BATCH = 65536


class BooksError(RuntimeError):
    pass


class Books:
    """Counters of one task or stage: in, kept, removed by reason, quarantined by reason."""

    def __init__(self, n_in: int = 0, kept: int = 0, removed: dict | None = None, quarantined: dict | None = None):
        self.n_in = n_in
        self.kept = kept
        self.removed = Counter(removed or {})
        self.quarantined = Counter(quarantined or {})

    def add(self, decision: str, reason: str) -> None:
        self.n_in += 1
        if decision == reasons.KEPT:
            self.kept += 1
        elif decision == reasons.REMOVED:
            self.removed[reason] += 1
        else:
            self.quarantined[reason] += 1

    def merge(self, other: "Books") -> "Books":
        self.n_in += other.n_in
        self.kept += other.kept
        self.removed.update(other.removed)
        self.quarantined.update(other.quarantined)
        return self

    def balanced(self) -> bool:
        return self.n_in == self.kept + sum(self.removed.values()) + sum(self.quarantined.values())

    def check(self, where: str) -> None:
        if not self.balanced():
            raise BooksError(
                f"{where}: books do not balance: in={self.n_in} kept={self.kept} "
                f"removed={sum(self.removed.values())} quarantined={sum(self.quarantined.values())}")

    def to_dict(self) -> dict:
        return {"in": self.n_in, "kept": self.kept,
                "removed": dict(sorted(self.removed.items())),
                "quarantined": dict(sorted(self.quarantined.items()))}

    @classmethod
    def from_dict(cls, d: dict) -> "Books":
        return cls(d["in"], d["kept"], d.get("removed"), d.get("quarantined"))


class LedgerWriter:
    """Append rows in order; `close()` writes the parquet file atomically and returns the books."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with naming(self.path):
            self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd", write_statistics=False)
        self._cols: dict[str, list] = {"id": [], "decision": [], "reason": [], "detail": []}
        self.books = Books()

    def add(self, doc_id: str, decision: str, reason: str = "", detail: dict | None = None) -> None:
        reasons.check(decision, reason)
        self._cols["id"].append(doc_id)
        self._cols["decision"].append(decision)
        self._cols["reason"].append(reason)
        self._cols["detail"].append(canonical_json(detail) if detail else "{}")
        self.books.add(decision, reason)
        if len(self._cols["id"]) >= _BATCH:
            self._flush()

    def kept(self, doc_id: str, detail: dict | None = None) -> None:
        self.add(doc_id, reasons.KEPT, "", detail)

    def _flush(self) -> None:
        if self._cols["id"]:
            with naming(self.path):
                self._writer.write_table(pa.table(self._cols, schema=SCHEMA), row_group_size=_BATCH)
            self._cols = {k: [] for k in self._cols}

    def close(self) -> Books:
        self._flush()
        with naming(self.path):
            self._writer.close()
            os.replace(self._tmp, self.path)
        return self.books

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if self._tmp.exists():
                self._tmp.unlink()


def read_ledger(stage_dir: str | os.PathLike) -> pa.Table:
    files = sorted(Path(stage_dir, "ledger").glob("*.parquet"))
    if not files:
        return SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f, schema=SCHEMA) for f in files])


def books_from_ledger(stage_dir: str | os.PathLike, table: pa.Table | None = None) -> Books:
    """Recount the books from the ledger files (used by checks and the audit); `table`: the ledger already read."""
    t = read_ledger(stage_dir) if table is None else table
    b = Books()
    for decision, reason in zip(t.column("decision").to_pylist(), t.column("reason").to_pylist()):
        b.add(decision, reason)
    return b
