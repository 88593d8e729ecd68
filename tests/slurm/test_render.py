"""Script rendering: quoting, refused values; runs generated scripts with bash (no cluster needed)."""
import os
import subprocess

import pytest

from common import config as cfgmod
from slurm.config import SlurmConfig
from slurm.render import _ranges, array_job


def test_array_ranges():
    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert _ranges([3]) == "3"


def test_plain_values_only_in_sbatch_lines():
    with pytest.raises(cfgmod.ConfigError, match="slurm.partition"):
        cfgmod.load(overrides=['slurm.partition="gpu; rm -rf /"'])
    with pytest.raises(cfgmod.ConfigError, match=r"slurm.extra_sbatch\[0\]"):
        cfgmod.load(data={"slurm": {"extra_sbatch": ["--x\n#SBATCH --y"]}})


def test_hostile_run_dir_is_quoted_and_nothing_runs(tmp_path):
    weird = tmp_path / 'a b"c\'d $(touch PWNED) `touch PWNED2`'
    weird.mkdir()
    fake_python = tmp_path / "py"
    fake_python.write_text('#!/bin/bash\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    fake_python.chmod(0o755)
    job = array_job(SlurmConfig(python=str(fake_python)), weird, "ingest", "read", [0], 0)
    script = tmp_path / "job.sh"
    script.write_text(job.script)
    out = tmp_path / "args.txt"
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env={**os.environ, "ARGS_OUT": str(out)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    args = out.read_text().splitlines()
    assert args[args.index("--run-dir") + 1] == str(weird.resolve())
    assert not list(tmp_path.rglob("PWNED*"))


def test_multi_node_training_script_is_rendered_for_srun_and_torchrun(tmp_path):
    """One node is all the test cluster has: the multi-node launch is checked as a script."""
    from slurm.train import train_job
    cfg = SlurmConfig(train_nodes=4, train_gpus_per_node=8, train_procs_per_node=8, train_cpus_per_task=32,
                      train_partition="gpu", signal_seconds=300)
    job = train_job(cfg, tmp_path / "run", dependency="123")
    s = job.script
    for line in ("#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=gpu", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@300",
                 "export OMP_NUM_THREADS=4"):
        assert line in s.splitlines(), line
    assert 'hosts=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))' in s
    assert "srun --ntasks-per-node=1" in s and "--nproc-per-node 8" in s and '--nnodes "$SLURM_JOB_NUM_NODES"' in s
    assert "--dependency=afterok:123" in job.argv
    assert subprocess.run(["bash", "-n"], input=s, text=True).returncode == 0
