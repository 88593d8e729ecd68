"""Run a step's tasks as the elements of an sbatch array, and wait for them.

The tasks are the same as the local executor's (`python -m pipeline task` runs one), with the same
completion markers, so a resubmitted step runs only the tasks without a valid marker. A task that
failed or was cancelled is resubmitted up to `slurm.retries` times before the step fails.
"""
from __future__ import annotations

from pipeline.executor import Executor
from pipeline.stage import read_marker
from slurm.render import array_job
from slurm.submit import SlurmError, require_slurm, sbatch


class SlurmExecutor(Executor):
    def __init__(self, workers: int):
        require_slurm()
        super().__init__(workers)

    def run_step(self, run, stage, step, tasks: list[int]) -> None:
        cfg = run.config.slurm
        pending = list(tasks)
        for attempt in range(cfg.retries + 1):
            if not pending:
                return
            job = array_job(cfg, run.run_dir, stage.name, step.name, pending, attempt)
            job_id = sbatch(job, wait=True)
            pending = [i for i in pending if read_marker(run, stage.name, step.name, i) is None]
            if pending:
                print(f"[slurm] {stage.name}/{step.name}: job {job_id} left tasks {pending} unfinished"
                      f"{'; resubmitting' if attempt < cfg.retries else ''}", flush=True)
        if pending:
            raise SlurmError(f"{stage.name}/{step.name}: tasks {pending} did not finish after "
                             f"{cfg.retries + 1} submissions; see {run.run_dir / 'slurm' / 'logs'}")
