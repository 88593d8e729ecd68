"""Run a step's tasks in N local worker processes (spawned, so workers share no state)."""
from __future__ import annotations

import multiprocessing as mp
import traceback
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

from common.progress import DocProgress, attach_doc_counter, new_doc_counter
from pipeline.executor import Executor


class TaskFailed(RuntimeError):
    pass


def _run_one(run_dir: str, stage_name: str, step_name: str, index: int) -> int:
    from pipeline.context import load_run_context
    from pipeline.stages import get_stage
    from pipeline.stage import execute_task
    run = load_run_context(run_dir)
    stage = get_stage(stage_name)
    step = next(s for s in stage.steps(run) if s.name == step_name)
    try:
        execute_task(run, stage, step, index)
    except BaseException as e:
        raise TaskFailed(f"{stage_name}/{step_name} task {index} failed: {e}\n{traceback.format_exc()}") from None
    return index


class LocalExecutor(Executor):
    """One pool of spawned workers for the whole run (spawning costs ~1 s of imports per worker)."""

    def __init__(self, workers: int):
        super().__init__(workers)
        self._pool: ProcessPoolExecutor | None = None
        self._counter = new_doc_counter()

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # the workers add the documents they read to one counter this process shows
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=attach_doc_counter, initargs=(self._counter,))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run_step(self, run, stage, step, tasks: list[int]) -> None:
        if not tasks:
            return
        with DocProgress(f"{stage.name}/{step.name}", step.docs_total(run, tasks), len(tasks)) as progress:
            # one task runs here unless the workers are up: they have imported what the step needs (numba,
            # pyarrow, ...) in an earlier step, which this process would pay for again (~0.4 s for clusters)
            if self.workers == 1 or (len(tasks) == 1 and self._pool is None):
                from pipeline.stage import execute_task
                for i in tasks:
                    try:
                        execute_task(run, stage, step, i)
                    except Exception as e:
                        raise TaskFailed(f"{stage.name}/{step.name} task {i} failed: {e}") from e
                    progress.task_done()
                return
            pool = self._get_pool()
            futures = [pool.submit(_run_one, str(run.run_dir), stage.name, step.name, i) for i in tasks]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for f in done:
                    exc = f.exception()
                    if exc is not None:
                        for p in pending:
                            p.cancel()
                        wait(pending)
                        raise exc
                    progress.task_done()
