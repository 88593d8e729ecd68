"""Stages, steps and tasks; completion markers; the run context.

A stage (ingest, dedupe, ...) is a list of steps run in order with a barrier between them; a step
is N independent tasks (one per shard, band partition, ...). A task writes its outputs atomically,
then its completion marker LAST: `<stage>/_tasks/<step>/<task>.json` with the sha256 of every
output and the task's deterministic stats. A re-run skips a task only when its marker parses and
every output it names still has that digest, so a corrupted or half-written output is redone,
never trusted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from common.io import atomic_write_json, read_json, sha256_file
from common.memory import AnonPeak, reset_peak, status_bytes
from common.paths import inside
from common.progress import flush_ticks
from pipeline.block import run_blocks, stats_of
from pipeline.context import RunContext, TaskContext
from pipeline.ledger import Books, LedgerWriter
from pipeline.stages import data_stages



@dataclass
class TaskResult:
    stats: dict = field(default_factory=dict)   # deterministic numbers only
    timing: dict = field(default_factory=dict)  # wall-clock figures (not compared)


class Step:
    """A set of independent tasks. Subclasses define `num_tasks` and `run_task`."""

    name: str = "step"

    def num_tasks(self, run: RunContext) -> int:
        raise NotImplementedError

    def run_task(self, task: TaskContext) -> TaskResult:
        raise NotImplementedError

    def docs_total(self, run: RunContext, tasks: list[int]) -> int | None:
        """How many documents the given tasks will read, when known beforehand (progress shows an ETA)."""
        return None


def shard_docs(shards: list[dict], tasks: list[int]) -> int:
    """Documents in the shards of the given tasks (one task per shard), from the input stage's stats."""
    return sum(int(shards[i].get("docs", 0)) for i in tasks)


class BlockStep(Step):
    """A step whose task runs a list of blocks and writes one ledger file."""

    def blocks(self, task: TaskContext) -> list:
        raise NotImplementedError

    def ledger_name(self, task: TaskContext) -> str:
        return f"{task.index:05d}"

    def run_task(self, task: TaskContext) -> TaskResult:
        ledger_path = task.stage_dir / "ledger" / f"{self.ledger_name(task)}.parquet"
        task.ledger = LedgerWriter(ledger_path)
        t0 = time.perf_counter()
        try:
            block_stats = run_blocks(self.blocks(task), task)
        except BaseException:
            task.ledger.abort()
            raise
        books = task.ledger.close()
        books.check(f"{task.stage}/{self.name} task {task.index}")
        task.add_output(ledger_path)
        wall = time.perf_counter() - t0
        return TaskResult(
            stats={"books": books.to_dict(), "blocks": {k: v.to_dict() for k, v in block_stats.items()}},
            timing={"wall_s": wall, "blocks_s": {k: round(v.seconds, 4) for k, v in block_stats.items()}},
        )


class ShardBlockStep(BlockStep):
    """A block step with one task per shard of its input stage; each task's ledger is named after its shard."""

    def __init__(self, input_stage: str, shards: list[dict]):
        self.input_stage = input_stage
        self.shards = shards

    def num_tasks(self, run: RunContext) -> int:
        return len(self.shards)

    def docs_total(self, run: RunContext, tasks: list[int]) -> int | None:
        return shard_docs(self.shards, tasks)

    def shard_name(self, task: TaskContext) -> str:
        return self.shards[task.index]["name"]

    def ledger_name(self, task: TaskContext) -> str:
        return self.shard_name(task)


class ShardFilterStep(ShardBlockStep):
    """The shape of every stage that filters documents shard by shard: reader (the input stage's shard)
    -> `filter_blocks` (the stage's own) -> writer (this stage's shard of the same name). The writer's
    count is the task's `shard` stats, read from its block stats by name."""

    name = "filter"

    def filter_blocks(self, task: TaskContext) -> list:
        raise NotImplementedError

    def writer(self, task: TaskContext, path: Path):
        from pipeline.shards import ShardWriter
        return ShardWriter(path)

    def blocks(self, task: TaskContext) -> list:
        from pipeline.shards import ShardReader
        name = self.shard_name(task)
        return [ShardReader(shard_path(task.run, self.input_stage, name)), *self.filter_blocks(task),
                self.writer(task, shard_path(task.run, task.stage, name))]

    def run_task(self, task: TaskContext) -> TaskResult:
        result = super().run_task(task)
        written = stats_of(result.stats["blocks"], "shard_writer")["written"]
        result.stats["shard"] = {"name": self.shard_name(task), "docs": written}
        return result


class Stage:
    name: str = "stage"
    # the names of `steps(run)`, in order, known without a run (SLURM dry runs render a script per step
    # before the stage's input exists; tests/slurm/test_dry_run.py holds them against the real steps)
    step_names: tuple[str, ...] = ()

    def steps(self, run: RunContext) -> list[Step]:
        raise NotImplementedError

    def finalize(self, run: RunContext, results: dict[str, list[dict]]) -> dict:
        """Merge the task stats of every step into the stage's stats.json content."""
        raise NotImplementedError


# ---------------------------------------------------------------- markers

def marker_path(run: RunContext, stage: str, step: str, index: int) -> Path:
    return run.stage_dir(stage) / "_tasks" / step / f"{index:05d}.json"


def write_marker(task: TaskContext, result: TaskResult) -> None:
    stage_dir = task.stage_dir
    outputs = {}
    for p in sorted(set(task.outputs)):
        outputs[str(Path(p).relative_to(stage_dir))] = sha256_file(p)
    # the timing log first: a task that fails on any write (a full disk) must leave no marker
    timing_path = stage_dir / "logs" / f"{task.step}-{task.index:05d}.timing.json"
    atomic_write_json(timing_path, result.timing)
    atomic_write_json(marker_path(task.run, task.stage, task.step, task.index),
                      {"outputs": outputs, "stats": result.stats})


def read_marker(run: RunContext, stage: str, step: str, index: int, verify: bool = True) -> dict | None:
    """The marker's content if the task is complete and its outputs intact, else None."""
    p = marker_path(run, stage, step, index)
    if not p.is_file():
        return None
    try:
        marker = read_json(p)
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(marker, dict) or "outputs" not in marker:
        return None
    if verify:
        stage_dir = run.stage_dir(stage)
        for rel, digest in marker["outputs"].items():
            f = stage_dir / rel
            if not f.is_file() or sha256_file(f) != digest:
                return None
    return marker


def execute_task(run: RunContext, stage: Stage, step: Step, index: int) -> dict:
    """Run one task and write its marker; returns the marker's stats."""
    task = TaskContext(run, stage.name, step.name, index)
    error_path = run.stage_dir(stage.name) / "_errors" / f"{step.name}-{index:05d}.json"
    try:
        reset_peak()
        with AnonPeak() as anon:
            result = step.run_task(task)
        if (peak := status_bytes("VmHWM")) is not None:
            result.timing["peak_rss_mb"] = round(peak / 2**20, 1)   # this task's own, not the worker's
        if anon.peak_mb is not None:
            result.timing["peak_anon_mb"] = anon.peak_mb
        write_marker(task, result)
    except BaseException as e:
        _record_error(error_path, step.name, index, e)
        raise
    finally:
        flush_ticks()
    error_path.unlink(missing_ok=True)
    return result.stats


def _record_error(path: Path, step: str, index: int, e: BaseException) -> None:
    """What `pipeline status` shows as the stage's last error; best effort (the disk may be full)."""
    import traceback
    try:
        atomic_write_json(path, {"step": step, "task": index, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "error": f"{type(e).__name__}: {e}"[:2000],
                                 "traceback": traceback.format_exc()[-8000:]})
    except OSError:
        pass


def merge_books(task_stats: list[dict]) -> Books:
    books = Books()
    for s in task_stats:
        books.merge(Books.from_dict(s["books"]))
    return books


def merge_block_stats(task_stats: list[dict]) -> dict:
    out: dict = {}
    for s in task_stats:
        for name, b in s.get("blocks", {}).items():
            acc = out.setdefault(name, {})
            for k, v in b.items():
                if isinstance(v, dict):
                    sub = acc.setdefault(k, {})
                    for kk, vv in v.items():
                        sub[kk] = sub.get(kk, 0) + vv
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    acc[k] = acc.get(k, 0) + v
                else:
                    acc[k] = v
    return {k: {kk: (dict(sorted(vv.items())) if isinstance(vv, dict) else vv) for kk, vv in sorted(v.items())}
            for k, v in sorted(out.items())}


def load_stats(run: RunContext, stage: str) -> dict | None:
    p = run.stage_dir(stage) / "stats.json"
    return read_json(p) if p.is_file() else None


def input_stage_for(run: RunContext, stage: str) -> str:
    """The nearest earlier data stage that has finished (its stats.json exists)."""
    order = list(data_stages())
    for prev in reversed(order[: order.index(stage)]):
        if load_stats(run, prev) is not None:
            return prev
    raise RuntimeError(f"stage {stage!r} needs the output of an earlier stage "
                       f"({', '.join(order[:order.index(stage)])}) in {run.run_dir}; run it first")


def input_shards(run: RunContext, stage: str) -> tuple[str, list[dict]]:
    """(input stage, its shard list [{"name", "docs"}]) for a per-shard stage."""
    prev = input_stage_for(run, stage)
    stats = load_stats(run, prev)
    return prev, stats["shards"]


class DamagedInputError(RuntimeError):
    pass


def recorded_outputs(run: RunContext, stage: str) -> dict[str, str]:
    """{output path relative to the stage directory: sha256}, as the stage's completion markers recorded them."""
    recorded: dict[str, str] = {}
    for p in sorted((run.stage_dir(stage) / "_tasks").glob("*/*.json")):
        try:
            recorded.update(read_json(p)["outputs"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            continue
    return recorded


def verify_input_shards(run: RunContext, stage: str) -> None:
    """Refuse to start `stage` when a shard it would read no longer has the sha256 that the
    producing stage's completion marker recorded: a damaged input is never trusted (a flipped
    byte inside a zstd frame can decode to different text without any error)."""
    if stage not in data_stages() or stage == data_stages()[0]:
        return
    prev, shards = input_shards(run, stage)
    recorded = recorded_outputs(run, prev)
    for shard in shards:
        f = shard_path(run, prev, shard["name"])
        digest = recorded.get(str(f.relative_to(run.stage_dir(prev))))
        why = ("no completion marker records it" if digest is None else "it is missing" if not f.is_file()
               else "its sha256 differs from the one its completion marker recorded"
               if sha256_file(f) != digest else "")
        if why:
            raise DamagedInputError(f"stage {stage!r} cannot read {f}: {why}; "
                                    f"re-run stage {prev!r} first (it redoes the damaged task)")


def shard_path(run: RunContext, stage: str, name: str) -> Path:
    """A shard of a stage; names come from stats.json, so a name that escapes the run dir is refused."""
    return inside(run.run_dir, stage, "shards", f"{name}.jsonl.zst")
