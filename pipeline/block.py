"""Blocks: the one interface of the pipeline (reader -> filters -> writer), datatrove-like.

A block is a generator transform `run(docs, task) -> Iterator[Document]`: it pulls documents from
the block before it and yields the ones it passes on. A block that drops a document records why
through `task.remove(...)` / `task.quarantine(...)`, so the ledger sees every document; a writer
records `task.keep(...)`. Blocks never know which executor runs them or where.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Iterable, Iterator

from common.progress import tick
from pipeline.document import Document

if TYPE_CHECKING:
    from pipeline.context import TaskContext


class Block:
    name: str = "block"

    def run(self, docs: Iterator[Document] | None, task: "TaskContext") -> Iterator[Document]:
        raise NotImplementedError

    def close(self, task: "TaskContext") -> dict:
        """Called once after the stream is exhausted; returns extra stats (deterministic values only)."""
        return {}


class BlockStats:
    """Per-block counters: documents in/out and drops by reason (deterministic), time (not)."""

    def __init__(self, name: str):
        self.name = name
        self.n_in = 0
        self.n_out = 0
        self.dropped: Counter = Counter()
        self.extra: dict = {}
        self.seconds = 0.0

    def to_dict(self) -> dict:
        d = {"in": self.n_in, "out": self.n_out, "dropped": dict(sorted(self.dropped.items()))}
        d.update(self.extra)
        return d


def _counted(docs: Iterable[Document], stats: BlockStats) -> Iterator[Document]:
    for d in docs:
        stats.n_in += 1
        yield d


def _ticking(docs: Iterator[Document]) -> Iterator[Document]:
    for d in docs:
        tick()
        yield d


def _timed(gen: Iterator[Document], stats: BlockStats) -> Iterator[Document]:
    while True:
        t0 = time.perf_counter()
        try:
            d = next(gen)
        except StopIteration:
            stats.seconds += time.perf_counter() - t0
            return
        stats.seconds += time.perf_counter() - t0
        stats.n_out += 1
        yield d


def stats_of(blocks: dict, name: str) -> dict:
    """The stats of the block named `name` in a task's or stage's `blocks` (keyed "position:name")."""
    found = [v for k, v in blocks.items() if k.split(":", 1)[1] == name]
    if len(found) != 1:
        raise KeyError(f"{len(found)} blocks named {name!r} among {sorted(blocks)}")
    return found[0]


def run_blocks(blocks: list[Block], task: "TaskContext") -> dict[str, BlockStats]:
    """Chain the blocks, drain the stream, and return each block's stats (keyed by position+name)."""
    all_stats: dict[str, BlockStats] = {}
    stream: Iterator[Document] | None = None
    for i, block in enumerate(blocks):
        key = f"{i}:{block.name}"
        stats = BlockStats(key)
        all_stats[key] = stats
        task.current_block = stats
        inp = _counted(stream, stats) if stream is not None else None
        stream = _timed(_bind(block, inp, task, stats), stats)
        if i == 0:
            stream = _ticking(stream)   # documents read = the step's progress
    for _ in stream or ():
        pass
    for i, block in enumerate(blocks):
        all_stats[f"{i}:{block.name}"].extra.update(block.close(task))
    return all_stats


def _bind(block: Block, inp, task: "TaskContext", stats: BlockStats) -> Iterator[Document]:
    # the task routes drop accounting to whichever block is currently producing
    gen = block.run(inp, task)
    for d in _attributing(gen, task, stats):
        yield d


def _attributing(gen, task, stats):
    while True:
        prev = task.current_block
        task.current_block = stats
        try:
            d = next(gen)
        except StopIteration:
            task.current_block = prev
            return
        task.current_block = prev
        yield d
