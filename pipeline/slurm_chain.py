"""`python -m pipeline submit|status`: the whole chain on a SLURM cluster, and where it stands. The
pipeline drives SLURM through the `slurm` library (rendering, sbatch, job states), never the reverse."""
from __future__ import annotations

from pathlib import Path

from common import config as cfgmod
from common.io import read_json
from common.progress import print_table


def submit(cfg: cfgmod.RunConfig, stages: list[str]) -> list[tuple[str, str]]:
    """Submit one job per stage, each `afterok` on the one before; returns [(stage, job id)]."""
    from common.io import atomic_write_json
    from pipeline.run import prepare_run_dir
    from pipeline.stages import available, check_names
    from slurm.render import stage_job
    from slurm.submit import sbatch
    if "train" in stages:
        check_training_fits(cfg)
    check_names(stages)
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
        previous = sbatch(job, wait=False)
        out.append((stage, previous))
    return out


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
    from slurm.submit import job_state
    rows = []
    jobs_path = Path(run_dir) / "slurm" / "jobs.json"
    jobs = read_json(jobs_path) if jobs_path.is_file() else []
    for job in jobs:
        states = job_state(job["job_id"])
        summary = ", ".join(sorted({v["state"] for v in states.values()})) or "finished (forgotten)"
        rows.append({"job": job["name"], "id": job["job_id"], "state": summary})
    stage_rows = []
    from pipeline.stages import data_stages
    for stage in data_stages():
        p = Path(run_dir) / stage / "stats.json"
        if p.is_file():
            s = read_json(p)
            stage_rows.append({"stage": stage, "in": s["in"], "kept": s["kept"],
                               "removed": sum(s["removed"].values()), "quarantined": sum(s["quarantined"].values())})
    if rows:
        print_table(rows, title="jobs")
    if stage_rows:
        print_table(stage_rows, title="ledger")
    if not rows and not stage_rows:
        print(f"no jobs recorded in {jobs_path}")
    return rows
