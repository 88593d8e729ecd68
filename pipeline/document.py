"""The record every block passes along."""
from __future__ import annotations

from dataclasses import dataclass, field

import orjson


@dataclass(slots=True)
class Document:
    id: str
    text: str
    source: str = ""
    meta: dict = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps({"id": self.id, "text": self.text, "source": self.source, "meta": self.meta},
                            option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, line: bytes | str) -> "Document":
        d = orjson.loads(line)
        return cls(id=d["id"], text=d["text"], source=d.get("source", ""), meta=d.get("meta") or {})

    @property
    def provenance(self) -> dict:
        """{"file", "line"} of the input record this document came from (set by ingest)."""
        return self.meta.get("_src", {})

    def origin(self) -> dict:
        """Where it came from, as ledger details record it: `source` (the input file), `line`, and
        `record_source` (the record's own source field)."""
        src = self.provenance
        return {"source": src.get("file", self.source), "line": src.get("line"), "record_source": self.source}
