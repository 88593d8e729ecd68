"""Run stages into a run directory: config recorded first, books checked last."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common import config as cfgmod
from common.io import atomic_write_json, canonical_json, naming, read_json, sweep_temp_files
from common.paths import refuse_escaping_links
from common.progress import print_table
from pipeline.context import RunContext
from pipeline.stage import load_stats, read_marker, verify_input_shards
from pipeline.stages import available, check_names, get_runner, get_stage, spec, stage_names

# keys that change how a run executes, not what it produces
EXECUTION_KEYS = {("run", "workers"), ("run", "executor"), ("run", "stages"), ("run", "run_dir"), ("run", "preset")}
EXECUTION_SECTIONS = {"slurm"}
# keys that only change the audit report: recorded in config.json, but a run may change them (no new run dir)
REPORT_ONLY_KEYS = {"cbrn.audit_labeled", "cbrn.audit_sample"}


def _output_fingerprint(d: dict) -> dict:
    """The config minus the keys that only say how to execute (they stay out of config.json)."""
    return {sec: {k: v for k, v in vals.items() if (sec, k) not in EXECUTION_KEYS}
            for sec, vals in d.items() if isinstance(vals, dict) and sec not in EXECUTION_SECTIONS}


def _diff(a, b, prefix="") -> list[str]:
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
    elif a != b:
        out.append(prefix)
    return out


def prepare_run_dir(cfg: cfgmod.RunConfig) -> RunContext:
    """Create the run directory and record the resolved config; refuse a different existing run.

    config.json holds everything that decides the outputs; how the run executes (workers,
    executor, stages, run_dir, the [slurm] section) goes to logs/invocations.jsonl, so outputs and
    config.json are byte-identical whatever the worker count or executor. Report-only keys
    (REPORT_ONLY_KEYS) are recorded too, but changing them is not a different run.
    """
    run_dir = Path(cfg.run.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.touch()
        probe.unlink()
    except FileExistsError:
        raise cfgmod.ConfigError(f"--run-dir {run_dir}: a file (or a path through a file) is in the way; "
                                 f"give a directory path") from None
    except PermissionError as e:
        raise cfgmod.ConfigError(f"--run-dir {run_dir}: not writable ({e.strerror}: {e.filename}); give a "
                                 f"directory you can write") from None
    # an interrupted earlier run may have left temp files: they are never outputs, and would make
    # this run's files differ from an uninterrupted one
    sweep_temp_files(run_dir)
    refuse_escaping_links(run_dir, "logs")
    path = run_dir / "config.json"
    resolved = _output_fingerprint(cfg.to_dict())
    if path.is_file():
        old = read_json(path)
        changed = [k for k in _diff(_output_fingerprint(old), resolved) if k not in REPORT_ONLY_KEYS]
        if changed:
            raise cfgmod.ConfigError(
                f"{path} records a run with a different config ({', '.join(changed[:8])}); "
                f"use a new --run-dir or remove the old one")
    atomic_write_json(path, resolved)
    log = run_dir / "logs" / "invocations.jsonl"
    log.parent.mkdir(exist_ok=True)
    with naming(log), open(log, "a", encoding="utf-8") as fh:
        fh.write(canonical_json({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv,
                                 "run": {k: getattr(cfg.run, k) for _, k in sorted(EXECUTION_KEYS)}}) + "\n")
    return RunContext(run_dir=run_dir, config=cfg)


def _task_peaks(stage_dir: Path, step: str, tasks: list[int]) -> dict:
    """The largest peak memory of one task of a step, resident and anonymous (from the tasks' timing logs;
    common.memory says why both)."""
    peaks: dict[str, list] = {"peak_task_rss_mb": [], "peak_task_anon_mb": []}
    for i in tasks:
        try:
            t = read_json(stage_dir / "logs" / f"{step}-{i:05d}.timing.json")
        except (OSError, ValueError):
            continue
        for name, key in (("peak_task_rss_mb", "peak_rss_mb"), ("peak_task_anon_mb", "peak_anon_mb")):
            if t.get(key) is not None:
                peaks[name].append(t[key])
    return {name: max(v) for name, v in peaks.items() if v}


def run_block_stage(run: RunContext, name: str, executor) -> dict:
    stage = get_stage(name)
    t0 = time.perf_counter()
    verify_input_shards(run, name)
    step_timing = {}
    results: dict[str, list[dict]] = {}
    for step in stage.steps(run):
        s0 = time.perf_counter()
        n = step.num_tasks(run)
        pending = [i for i in range(n) if read_marker(run, name, step.name, i) is None]
        executor.run_step(run, stage, step, pending)
        stats = []
        for i in range(n):
            marker = read_marker(run, name, step.name, i, verify=False)
            if marker is None:
                raise RuntimeError(f"{name}/{step.name} task {i}: no completion marker after the step ran")
            stats.append(marker["stats"])
        results[step.name] = stats
        step_timing[step.name] = {"tasks": n, "ran": len(pending), "wall_s": round(time.perf_counter() - s0, 3),
                                  **_task_peaks(run.stage_dir(name), step.name, pending)}
    sweep_temp_files(run.stage_dir(name))   # of tasks killed and redone in this run (SLURM requeue)
    stats = stage.finalize(run, results)
    stats = {"stage": name, **stats}
    from pipeline.ledger import Books, BooksError
    Books.from_dict(stats).check(f"stage {name}")
    prev = stats.get("input_stage")
    prev_stats = load_stats(run, prev) if prev else None
    if prev_stats is not None and prev_stats.get("kept") != stats["in"]:  # no document lost between stages
        raise BooksError(f"stage {name}: books do not balance with its input: in={stats['in']} but stage "
                         f"{prev} kept {prev_stats.get('kept')} ({run.stage_dir(prev) / 'stats.json'})")
    stage_dir = run.stage_dir(name)
    atomic_write_json(stage_dir / "stats.json", stats)
    wall = time.perf_counter() - t0
    ran = sum(t["ran"] for t in step_timing.values())
    if ran or not (stage_dir / "timing.json").is_file():  # a stage already complete keeps its real timing
        atomic_write_json(stage_dir / "timing.json", {
            "wall_s": round(wall, 3), "docs_per_s": round(stats["in"] / wall, 1) if wall > 0 else None,
            "steps": step_timing})
    stats["_wall_s"], stats["_ran_tasks"] = wall, ran
    return stats


def check_inputs(cfg: cfgmod.RunConfig, stages: list[str]) -> None:
    """Before anything is written: every input pattern of a new ingest must match a file (the error names
    the pattern), so a typo leaves no config.json behind. A run that recorded its inputs keeps them."""
    if "ingest" in stages and cfg.ingest.inputs and not (Path(cfg.run.run_dir) / "ingest" / "inputs.json").is_file():
        from pipeline.readers import resolve_inputs
        resolve_inputs(list(cfg.ingest.inputs))


def run_pipeline(cfg: cfgmod.RunConfig, stages: list[str] | None = None, explicit: bool = False) -> dict:
    from pipeline.executor import get_executor
    stages = stages or list(cfg.run.stages) or stage_names()
    check_names(stages)
    check_inputs(cfg, stages)
    run = prepare_run_dir(cfg)
    executor = get_executor(cfg.run.executor, cfg.run.workers)
    rows, summary = [], {}
    try:
        _run_stages(run, stages, executor, explicit, rows, summary)
    finally:
        executor.close()
    if rows:
        print_table(rows, title=f"\nrun {run.run_dir}")
    if any(s in stages for s in ("train", "audit")):
        from pipeline.summary import print_summary
        summary["_result"] = print_summary(run.run_dir)
    return summary


def _run_stages(run, stages, executor, explicit, rows, summary) -> None:
    for name in stages:
        refuse_escaping_links(run.run_dir, name)   # every write of the stage goes under RUN_DIR/<name>
        if not available(name):
            if explicit:
                raise RuntimeError(f"stage {name!r} is not available in this version")
            print(f"[pipeline] stage {name!r} is not available in this version; skipped", file=sys.stderr)
            continue
        if not spec(name).runner:
            stats = run_block_stage(run, name, executor)
            summary[name] = stats
            complete = stats["_ran_tasks"] == 0   # every task finished in an earlier invocation
            rows.append({"stage": name, "in": stats["in"], "kept": stats["kept"],
                         "removed": sum(stats["removed"].values()),
                         "quarantined": sum(stats["quarantined"].values()),
                         "wall_s": f"{stats['_wall_s']:.1f}",
                         "docs/s": "-" if complete else f"{stats['in'] / max(stats['_wall_s'], 1e-9):,.0f}"})
            print_table([rows[-1]], title=f"[{name}] " + ("skipped (complete: every task finished earlier)"
                                                          if complete else "done"))
        else:
            summary[name] = get_runner(name)(run)
