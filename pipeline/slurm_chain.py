"""`python -m pipeline submit|status`: the whole chain on a SLURM cluster, and where it stands. The
pipeline drives SLURM through the `slurm` library (rendering, sbatch, job states), never the reverse."""
from __future__ import annotations

from pathlib import Path

from common import config as cfgmod
from common.io import read_json
from common.progress import print_table


def submit(cfg: cfgmod.RunConfig, stages: list[str], *, dry_run: bool = False) -> list[tuple[str, str]]:
    """Submit one job per stage, each `afterok` on the one before; returns [(stage, job id)]. With
    `dry_run`, write every script (the stage drivers, the array scripts of every step, the training job)
    under RUN_DIR/slurm/ and submit nothing: no controller or sbatch needed; returns [(stage, script)]."""
    from common.io import atomic_write_json
    from pipeline.run import prepare_run_dir
    from pipeline.stages import available, check_names
    from slurm.render import stage_job
    from slurm.submit import sbatch
    check_names(stages)
    if "train" in stages:
        check_training_fits(cfg)
    preflight(cfg, stages)
    run = prepare_run_dir(cfg)
    # the drivers run with the full config, [slurm] and execution settings included
    full = cfg.to_dict()
    full["run"]["run_dir"] = str(run.run_dir.resolve())
    atomic_write_json(run.run_dir / "slurm" / "submitted-config.json", full)
    previous, out = None, []
    for stage in stages:
        if not available(stage):
            raise cfgmod.ConfigError(f"stage {stage!r} is not available in this version")
        if stage == "train":
            from slurm.train import train_job
            job = train_job(cfg.slurm, run.run_dir, dependency=previous)
        else:
            job = stage_job(cfg.slurm, run.run_dir, stage, dependency=previous)
        if dry_run:
            out += _render_dry_run(run, stage, job, previous)
            previous = f"<{stage} job id>"
            continue
        previous = sbatch(job, wait=False)
        out.append((stage, previous))
    return out


def _render_dry_run(run, stage: str, job, dependency) -> list[tuple[str, str]]:
    """Write the stage's driver (or training) script and, for a data stage, one array script per step
    with the tasks known now (a later stage's task count comes from the earlier stage's output: until
    that exists the script shows task 0 and says so)."""
    from pipeline.stages import data_stages, get_stage
    from slurm.render import array_job
    from slurm.submit import write_script
    written = [(stage, str(write_script(job)))]
    if stage not in data_stages():
        return written
    try:
        counts = {step.name: step.num_tasks(run) for step in get_stage(stage).steps(run)}
    except Exception:  # the steps need the output of a stage that has not run yet
        counts = {}
    for name in get_stage(stage).step_names:
        n, known = counts.get(name, 1), name in counts
        job = array_job(run.config.slurm, run.run_dir, stage, name, list(range(max(1, n))), attempt=0)
        if not known:
            note = ("# dry run: the number of array tasks is decided when the stage starts (from the "
                    "previous stage's output); shown with task 0")
            job.script = job.script.replace("#!/bin/bash\n", f"#!/bin/bash\n{note}\n", 1)
        written.append((f"{stage}/{name}", str(write_script(job))))
    return written


def preflight(cfg: cfgmod.RunConfig, stages: list[str]) -> None:
    """Refuse a submission that cannot work, before anything is written or queued."""
    from pipeline.run import check_inputs
    run_dir = Path(cfg.run.run_dir)
    check_inputs(cfg, stages)
    if "train" in stages and "tokenize" not in stages and not cfg.train.data.sources \
            and not (run_dir / "tokenize" / "manifest.json").is_file():
        raise cfgmod.ConfigError(f"slurm: the train job needs tokenized data, and {run_dir / 'tokenize'} has "
                                 f"no manifest.json: add tokenize to --stages (or set train.data.sources)")
    s = cfg.slurm
    if "train" in stages and s.train_gpus_per_node and s.train_procs_per_node != s.train_gpus_per_node:
        raise cfgmod.ConfigError(
            f"slurm: train_procs_per_node = {s.train_procs_per_node} processes for train_gpus_per_node = "
            f"{s.train_gpus_per_node} GPUs: the trainer runs one process per GPU; set both to the same number")


def check_training_fits(cfg: cfgmod.RunConfig) -> None:
    """Refuse a training job whose layout `python -m pretrain.plan` says does not fit the GPUs (on GPU
    jobs only: CPU clusters have no per-device memory to plan for)."""
    if not cfg.slurm.train_gpus_per_node:
        return
    from pretrain.plan import fmt, from_config, plan
    try:
        args, layout, memory = from_config(cfg)
        result = plan(args, layout, memory)
    except ValueError as e:
        raise cfgmod.ConfigError(f"slurm: training layout: {e}") from None
    if not result["fits"]:
        per = result["per_gpu_bytes"]
        parts = ", ".join(f"{k} {fmt(v)}" for k, v in per.items() if k != "total")
        raise cfgmod.ConfigError(
            f"slurm: the training layout does not fit: {fmt(per['total'])} per GPU ({parts}) of "
            f"{fmt(result['usable_bytes'])} usable on {result['gpus']} GPUs of {fmt(memory)}; run "
            f"`python -m pretrain.plan --config ...` to find one that does (more nodes, ep, fsdp, recompute, "
            f"a smaller micro-batch)")


def status(run_dir: Path) -> list[dict]:
    """Print the recorded jobs' states from scontrol; when the controller cannot be reached, say so once
    and show the jobs as unknown (`pipeline status` prints the stages, from the completion markers)."""
    from slurm.submit import ControllerUnreachable, job_state
    rows = []
    jobs_path = Path(run_dir) / "slurm" / "jobs.json"
    jobs = read_json(jobs_path) if jobs_path.is_file() else []
    unreachable = None
    for job in jobs:
        summary = "unknown (controller unreachable)"
        if unreachable is None:
            try:
                states = job_state(job["job_id"])
                summary = ", ".join(sorted({v["state"] for v in states.values()})) or "finished (forgotten)"
            except ControllerUnreachable as e:
                unreachable = str(e)
        rows.append({"job": job["name"], "id": job["job_id"], "state": summary})
    if unreachable:
        print(f"SLURM controller unreachable ({unreachable}): job states unknown; what finished is read "
              f"from the completion markers (`python -m pipeline status {run_dir}`)")
    if rows:
        print_table(rows, title="jobs")
    return rows
