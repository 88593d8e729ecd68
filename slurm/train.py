"""The training job: srun one launcher per node, torchrun inside, preemption-safe.

- Rendezvous: the first host of `scontrol show hostnames $SLURM_JOB_NODELIST`, port from the job id
  (stable across requeues of the same job, distinct between jobs).
- `--signal=B:USR1@<slurm.signal_seconds>`: the batch shell gets USR1 before the time limit and passes
  it on; the trainer checkpoints and exits 75; the script then requeues its own job, which resumes
  from that checkpoint. On `scontrol requeue` / preemption SLURM sends TERM: same checkpoint + exit 75.
- OMP_NUM_THREADS is fixed from the config so a resumed run computes bit-identically.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from common.config import REPO_ROOT
from slurm.config import SlurmConfig
from slurm.render import Job, _header, _output_arg, _python, _sbatch_lines, job_name


def train_job(cfg: SlurmConfig, run_dir: Path, dependency: str | None = None,
              config_path: Path | None = None) -> Job:
    run_dir = Path(run_dir).resolve()
    sdir = run_dir / "slurm"
    config_path = Path(config_path) if config_path else sdir / "submitted-config.json"
    name = job_name(run_dir.name, "train")
    path = sdir / "train.sbatch"
    argv = ["--parsable", f"--job-name={name}", f"--output={_output_arg(sdir / 'logs' / 'train-%j.out')}",
            f"--chdir={REPO_ROOT}", "--open-mode=append"]
    if dependency:
        argv.append(f"--dependency=afterok:{dependency}")
    threads = max(1, cfg.train_cpus_per_task // cfg.train_procs_per_node)
    lines = _header(shlex.join(argv + [str(path)])) + _sbatch_lines(
        cfg, time=cfg.train_time, cpus=cfg.train_cpus_per_task, partition=cfg.train_partition or cfg.partition)
    lines += [f"#SBATCH --nodes={cfg.train_nodes}", "#SBATCH --ntasks-per-node=1", "#SBATCH --requeue",
              f"#SBATCH --signal=B:USR1@{cfg.signal_seconds}"]
    if cfg.train_gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={cfg.train_gpus_per_node}")
    py, q = _python(cfg), shlex.quote
    lines += [
        "",
        "set -uo pipefail",
        f"export PYTHONPATH={q(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
        "export NO_PROGRESS=1",
        f"export OMP_NUM_THREADS={threads}",
        'hosts=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))',
        'export MASTER_ADDR="${hosts[0]}"',
        "export MASTER_PORT=$(( 20000 + SLURM_JOB_ID % 20000 ))",
        'echo "[train] job $SLURM_JOB_ID restart ${SLURM_RESTART_COUNT:-0} on ${#hosts[@]} node(s), master $MASTER_ADDR:$MASTER_PORT"',
        'child=""; warned=0',
        "# USR1 = the time limit is near: checkpoint, exit 75, then requeue ourselves",
        """trap 'warned=1; [ -n "$child" ] && kill -USR1 "$child"' USR1""",
        """trap '[ -n "$child" ] && kill -TERM "$child"' TERM""",
        f"srun --ntasks-per-node=1 --kill-on-bad-exit=1 {q(py)} -m pretrain.launch "
        f'--nnodes "$SLURM_JOB_NUM_NODES" --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" '
        f"--nproc-per-node {cfg.train_procs_per_node} --config {q(str(config_path))} --run-dir {q(str(run_dir))} &",
        "child=$!",
        "rc=0",
        'while true; do wait "$child"; rc=$?; kill -0 "$child" 2>/dev/null || break; done',
        'echo "[train] trainer exited $rc"',
        'if [ "$rc" -eq 75 ] && [ "$warned" -eq 1 ]; then scontrol requeue "$SLURM_JOB_ID"; fi',
        'exit "$rc"',
    ]
    return Job(name, "\n".join(lines) + "\n", argv, path)
