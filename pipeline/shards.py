"""Read and write a stage's kept documents: `<stage>/shards/<name>.jsonl.zst`."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from common.io import ZstdLineWriter, iter_lines
from pipeline.block import Block
from pipeline.document import Document


class ShardReader(Block):
    """Documents of one shard written by an earlier stage. Damage here is an error, never skipped."""

    name = "shard_reader"

    def __init__(self, path: Path):
        self.path = Path(path)

    def run(self, docs, task) -> Iterator[Document]:
        for lineno, line in iter_lines(self.path):
            try:
                yield Document.from_json(line)
            except Exception as e:  # a stage's own output is trusted only if it parses
                raise RuntimeError(f"{self.path}:{lineno}: cannot read document: {e}") from e


def read_shard(path: Path) -> Iterator[Document]:
    for _, line in iter_lines(path):
        yield Document.from_json(line)


class ShardWriter(Block):
    """The terminal block: writes kept documents and records them as kept in the ledger."""

    name = "shard_writer"

    def __init__(self, path: Path, keep_detail=None):
        self.path = Path(path)
        self.keep_detail = keep_detail
        self.count = 0

    def run(self, docs, task) -> Iterator[Document]:
        with ZstdLineWriter(self.path) as w:
            for d in docs:
                w.write_line(d.to_json())
                task.keep(d, self.keep_detail(d) if self.keep_detail else None)
                self.count += 1
        task.add_output(self.path)
        return
        yield  # a generator that yields nothing: the writer is the end of the stream

    def close(self, task) -> dict:
        return {"written": self.count}
