"""Executors decide where a step's tasks run; blocks never know.

An executor is a subclass of `Executor` registered by name in `EXECUTORS` ("module:Class", imported
only when chosen): `local` (spawned worker processes) and `slurm` (sbatch arrays). A third, Ray say, is
one new file with its class and one line here (or `register_executor` from a plugin).
"""
from __future__ import annotations

import difflib
import importlib


class Executor:
    """Runs the given tasks of a step to completion (each writes its own completion marker) and raises
    when one fails, naming it. `close()` releases what the executor holds between steps."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)

    def run_step(self, run, stage, step, tasks: list[int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


EXECUTORS: dict[str, str] = {
    "local": "pipeline.executor.local:LocalExecutor",
    "slurm": "pipeline.executor.slurm:SlurmExecutor",
}


def register_executor(name: str, spec: str) -> None:
    EXECUTORS[name] = spec


def get_executor(kind: str, workers: int) -> Executor:
    spec = EXECUTORS.get(kind)
    if spec is None:
        close = difflib.get_close_matches(kind, EXECUTORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"run.executor: unknown executor {kind!r}{hint}; known: {', '.join(EXECUTORS)}")
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)(workers)
