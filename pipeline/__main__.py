"""`python -m pipeline run|submit|status|task|check|democorpus|tokenizer ...`"""
from __future__ import annotations

import argparse
import sys

from common import config as cfgmod


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="run config file (TOML or JSON)")
    p.add_argument("--preset", help="named preset from configs/ (e.g. tiny, demo)")
    p.add_argument("--input", action="append", default=None, metavar="PATH_OR_GLOB",
                   help="input file, directory or glob (repeatable); default: the demo corpus")
    p.add_argument("--run-dir", help="run directory (default runs/demo)")
    from pipeline.stages import stage_names
    p.add_argument("--stages", help=f"comma-separated, from: {','.join(stage_names())} (default: all available)")
    p.add_argument("--workers", type=int, help="worker processes (default 2)")
    from pipeline.executor import EXECUTORS
    p.add_argument("--executor", choices=sorted(EXECUTORS), help="where tasks run (default local)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value (repeatable)")


def resolve_config(args) -> cfgmod.RunConfig:
    data: dict = {}
    run: dict = {}
    if args.run_dir:
        run["run_dir"] = args.run_dir
    if args.workers is not None:
        run["workers"] = args.workers
    if args.executor:
        run["executor"] = args.executor
    if args.stages:
        run["stages"] = [s.strip() for s in args.stages.split(",") if s.strip()]
    if run:
        data["run"] = run
    if args.input:
        data["ingest"] = {"inputs": args.input}
    config_file = args.config
    if args.run_dir and not (args.config or args.preset or args.input):
        from pathlib import Path
        stored = Path(args.run_dir) / "config.json"
        if stored.is_file():  # continue this run: what decides its outputs is what it recorded
            print(f"continuing {args.run_dir} with its stored config ({stored})", file=sys.stderr)
            config_file = stored
    return cfgmod.load(config_file=config_file, preset=args.preset, overrides=args.set, data=data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run stages into a run directory")
    _add_run_args(p_run)
    p_submit = sub.add_parser("submit", help="submit the stages to SLURM as a chain of dependent jobs")
    _add_run_args(p_submit)
    p_submit.add_argument("--dry-run", action="store_true",
                          help="write every job script under RUN_DIR/slurm/ and submit nothing (no controller needed)")
    p_status = sub.add_parser("status", help="where a run stands: stages done / partial / failed / pending, "
                                             "books, last error, SLURM jobs")
    p_status.add_argument("run_dir")
    p_status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_task = sub.add_parser("task", help="run one task of a stage step (what SLURM array tasks call)")
    p_task.add_argument("--run-dir", required=True)
    p_task.add_argument("--stage", required=True)
    p_task.add_argument("--step", required=True)
    p_task.add_argument("--task", type=int, help="task index (default $SLURM_ARRAY_TASK_ID)")
    p_check = sub.add_parser("check", help="check that a run directory is complete and its books balance")
    p_check.add_argument("run_dir")
    p_explain = sub.add_parser("explain", help="what happened to documents, stage by stage (from the ledgers)")
    p_explain.add_argument("run_dir")
    p_explain.add_argument("ids", nargs="+", metavar="ID", help="document ids (ingest's own id, or FILE:LINE)")
    p_explain.add_argument("--json", action="store_true", help="print JSON instead of text")
    p_demo = sub.add_parser("democorpus", help="write the demo corpus into a directory")
    p_demo.add_argument("--out", required=True)
    p_demo.add_argument("--preset", default="demo")
    p_tok = sub.add_parser("tokenizer", help="train a tokenizer or convert a tiktoken file (pipeline/tokenizer_cli.py)")
    from pipeline.tokenizer_cli import add_arguments as add_tokenizer_arguments
    add_tokenizer_arguments(p_tok)
    args, extra = parser.parse_known_args(argv)
    if extra:
        import os
        hint = ""
        if any(os.path.exists(e) for e in extra):   # the shell expanded an unquoted glob after --input
            hint = (" (these look like files: did the shell expand an unquoted glob? quote the pattern, "
                    "--input 'data/*.jsonl', or give --input once per file)")
        parser.error(f"unrecognized arguments: {' '.join(extra)}{hint}")

    try:
        if args.cmd == "run":
            from pipeline.run import run_pipeline
            cfg = resolve_config(args)
            run_pipeline(cfg, explicit=bool(args.stages))
        elif args.cmd == "submit":
            from pipeline.slurm_chain import submit
            cfg = resolve_config(args)
            from pipeline.stages import stage_names
            stages = [s.strip() for s in args.stages.split(",")] if args.stages else list(cfg.run.stages) or stage_names()
            for stage, job_id in submit(cfg, stages, dry_run=args.dry_run):
                print(f"{stage}\t{job_id}")
            if args.dry_run:
                print("dry run: every script is written above; nothing was submitted", file=sys.stderr)
        elif args.cmd == "status":
            from pipeline.status import main as status_main
            return status_main(args.run_dir, as_json=args.json)
        elif args.cmd == "task":
            import os
            from pipeline.context import load_run_context
            from pipeline.stage import execute_task, read_marker
            from pipeline.stages import get_stage
            index = args.task if args.task is not None else int(os.environ["SLURM_ARRAY_TASK_ID"])
            run = load_run_context(args.run_dir)
            stage = get_stage(args.stage)
            step = next((s for s in stage.steps(run) if s.name == args.step), None)
            if step is None:
                raise cfgmod.ConfigError(f"stage {args.stage!r} has no step {args.step!r}")
            if read_marker(run, args.stage, args.step, index) is None:
                from common.progress import DocProgress
                # one SLURM array task: its log gets a progress line every PROGRESS_INTERVAL_S seconds
                with DocProgress(f"{args.stage}/{args.step} task {index}", step.docs_total(run, [index])):
                    execute_task(run, stage, step, index)
        elif args.cmd == "check":
            from pipeline.check import main as check_main
            return check_main(args.run_dir)
        elif args.cmd == "explain":
            from pipeline.explain import main as explain_main
            return explain_main(args.run_dir, args.ids, as_json=args.json)
        elif args.cmd == "democorpus":
            from pipeline.democorpus import build
            cfg = cfgmod.load(preset=args.preset)
            print(build(args.out, cfg.demo, cfg.ingest.max_text_bytes))
        elif args.cmd == "tokenizer":
            from pipeline.tokenizer_cli import run as run_tokenizer
            return run_tokenizer(args)
    except Exception as e:
        return _exit_code(e)
    return 0


def _exit_code(e: Exception) -> int:
    """0 ok, 1 a stage failed, 2 bad config or arguments, 75 preempted (checkpointed: requeue)."""
    if isinstance(getattr(e, "exit_code", None), int):   # pretrain.pipeline_stage.TrainPreempted
        print(f"preempted: {e}", file=sys.stderr)
        return e.exit_code
    if isinstance(e, (cfgmod.ConfigError, FileNotFoundError, ValueError, KeyError)):
        print(f"error: {e}", file=sys.stderr)
        return 2
    if isinstance(e, (RuntimeError, OSError)):   # a failed stage; a disk that is full names the file
        print(f"error: {e}", file=sys.stderr)
        return 1
    raise e

if __name__ == "__main__":
    sys.exit(main())
