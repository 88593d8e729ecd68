"""`python -m pipeline status RUN_DIR [--json]`: where a run stands, from its files alone (no controller,
no config needed beyond the run's own config.json).

Per stage: done (its stats / summary / report exist), partial (some tasks finished: how many of how many
per step), failed (a task recorded an error and the stage did not finish), or pending; the books of
finished data stages (in, kept, removed, quarantined); the last error a task recorded (`<stage>/_errors/`,
written by `pipeline.stage.execute_task`, with the path of the full traceback); the trainer's step and
state from train/status.json; then the SLURM jobs recorded for the run, if any (`pipeline.slurm_chain`).
"""
from __future__ import annotations

import json
from pathlib import Path

from common.io import read_json
from common.progress import print_table


def _steps_progress(run_dir: Path, stage: str) -> dict[str, dict]:
    """{step: {"done": markers, "tasks": planned or None}} from the completion markers."""
    tasks_dir = run_dir / stage / "_tasks"
    done = {p.name: len(list(p.glob("*.json"))) for p in sorted(tasks_dir.iterdir()) if p.is_dir()} \
        if tasks_dir.is_dir() else {}
    planned: dict[str, int] = {}
    try:  # how many tasks each step has; needs the earlier stages' outputs, so it may not be known yet
        from pipeline.context import load_run_context
        from pipeline.stages import get_stage
        run = load_run_context(run_dir)
        for step in get_stage(stage).steps(run):
            planned[step.name] = step.num_tasks(run)
    except Exception:
        pass
    names = list(planned) + [s for s in done if s not in planned]
    return {s: {"done": done.get(s, 0), "tasks": planned.get(s)} for s in names}


def last_error(run_dir: Path, stage: str) -> dict | None:
    errors = sorted((run_dir / stage / "_errors").glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not errors:
        return None
    e = read_json(errors[-1])
    return {**e, "file": str(errors[-1]), "count": len(errors)}


def stage_status(run_dir: Path, stage: str) -> dict:
    from pipeline.stages import data_stages
    row: dict = {"stage": stage}
    d = run_dir / stage
    error = last_error(run_dir, stage) if stage in data_stages() else None
    if stage in data_stages():
        if (d / "stats.json").is_file():
            s = read_json(d / "stats.json")
            row.update(state="done", **{k: s[k] for k in ("in", "kept")}, removed=sum(s["removed"].values()),
                       quarantined=sum(s["quarantined"].values()))
        else:
            steps = _steps_progress(run_dir, stage)
            started = any(v["done"] for v in steps.values())
            row["state"] = "failed" if error else ("partial" if started else "pending")
            if started or error:
                row["steps"] = steps
    elif stage == "train":
        status = d / "status.json"
        if status.is_file():
            s = read_json(status)
            row.update(state={"completed": "done", "running": "running (or killed)", "preempted": "partial",
                              "stopped": "partial", "failed": "failed"}.get(s.get("state"), s.get("state")),
                       step=s.get("step"), total_steps=s.get("total_steps"))
            if s.get("state") == "failed":
                error = {"error": s.get("error"), "file": str(status)}
        else:
            row["state"] = "pending"
    elif stage == "audit":
        row["state"] = "done" if (d / "audit.json").is_file() and (d / "report.html").is_file() else "pending"
    if error:
        row["last_error"] = error
    return row


def run_status(run_dir: str | Path) -> list[dict]:
    from pipeline.stages import stage_names
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json); start one with "
                                f"`python -m pipeline run --run-dir {run_dir} ...`")
    return [stage_status(run_dir, s) for s in stage_names()]


def _tasks_text(row: dict) -> str:
    steps = row.get("steps") or {}
    return ", ".join(f"{k} {v['done']}/{v['tasks'] if v['tasks'] is not None else '?'}" for k, v in steps.items())


def main(run_dir: str, *, as_json: bool = False) -> int:
    rows = run_status(run_dir)
    if as_json:
        print(json.dumps({"run_dir": str(run_dir), "stages": rows}, indent=1))
        return 0
    table = []
    for r in rows:
        detail = _tasks_text(r)
        if r["stage"] == "train" and r.get("step") is not None:
            detail = f"step {r['step']}" + (f"/{r['total_steps']}" if r.get("total_steps") else "")
        table.append({"stage": r["stage"], "state": r["state"], "tasks / step": detail or "-",
                      "in": r.get("in", "-"), "kept": r.get("kept", "-"), "removed": r.get("removed", "-"),
                      "quarantined": r.get("quarantined", "-")})
    print_table(table, title=f"run {run_dir}")
    for r in rows:
        if r.get("last_error"):
            e = r["last_error"]
            where = f"{e.get('step')} task {e.get('task')}: " if e.get("step") is not None else ""
            print(f"{r['stage']}: last error: {where}{e.get('error')}\n  details: {e['file']}")
    pending = [r["stage"] for r in rows if r["state"] != "done"]
    if pending:
        print(f"to continue: python -m pipeline run --run-dir {run_dir} --stages {','.join(pending)}")
    if (Path(run_dir) / "slurm" / "jobs.json").is_file():
        from pipeline.slurm_chain import status as slurm_status
        slurm_status(Path(run_dir))
    return 0
