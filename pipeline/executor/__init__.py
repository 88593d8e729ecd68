"""Executors decide where a step's tasks run; blocks never know."""
from __future__ import annotations


def get_executor(kind: str, workers: int):
    if kind == "local":
        from pipeline.executor.local import LocalExecutor
        return LocalExecutor(workers)
    if kind == "slurm":
        try:
            from pipeline.executor.slurm import SlurmExecutor
        except ImportError as e:
            raise RuntimeError("the slurm executor is not available in this version") from e
        return SlurmExecutor(workers)
    raise ValueError(f"unknown executor {kind!r} (expected local or slurm)")
