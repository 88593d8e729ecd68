"""Every value put into a generated shell / sbatch script is quoted: scripts rendered with hostile
run directories, stage names and interpreter paths run under bash without running anything injected,
and hand the exact values to the program. No shell=True / os.system anywhere in the package."""
import ast
import os
import subprocess

import pytest

from common import config as cfgmod
from slurm.config import SlurmConfig
from slurm.render import array_job, stage_job
from tests.security.scan import package_files

HOSTILE = ['x"; touch PWNED; "', "$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '",
           "a\ntouch PWNED\n", "a b\tc * ? [x] ~ ! # & | < > \\ {y,z}"]


def _fake_python(tmp_path, name="py"):
    """A stand-in interpreter that writes the arguments it got, one per line (NUL-free, so exact)."""
    d = tmp_path / name
    d.mkdir(parents=True)
    py = d / "python"
    py.write_text('#!/bin/bash\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGS_OUT"\n')
    py.chmod(0o755)
    return py


def _run_script(job, tmp_path) -> list[str]:
    script = tmp_path / "job.sh"
    script.write_text(job.script)
    out = tmp_path / "args.bin"
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "ARGS_OUT": str(out)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes().decode().split("\0")[:-1]


def _nothing_ran(tmp_path):
    assert not [p for p in tmp_path.rglob("*PWNED*") if p.is_file()], "an injected command ran"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_array_job_with_a_hostile_run_dir_stage_step_and_python_runs_nothing_injected(tmp_path, hostile):
    run_dir = tmp_path / "runs" / hostile
    run_dir.mkdir(parents=True)
    py = _fake_python(tmp_path, name=hostile.replace("/", "_").replace("\n", "_"))
    job = array_job(SlurmConfig(python=str(py)), run_dir, f"ingest{hostile}", f"read{hostile}", [0, 1, 2], 0)
    args = _run_script(job, tmp_path)
    assert args == ["-m", "pipeline", "task", "--run-dir", str(run_dir.resolve()),
                    "--stage", f"ingest{hostile}", "--step", f"read{hostile}"]
    _nothing_ran(tmp_path)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_stage_job_with_a_hostile_run_dir_and_stage_runs_nothing_injected(tmp_path, hostile):
    run_dir = tmp_path / "runs" / hostile
    run_dir.mkdir(parents=True)
    py = _fake_python(tmp_path)
    job = stage_job(SlurmConfig(python=str(py)), run_dir, f"dedupe{hostile}", dependency="123")
    args = _run_script(job, tmp_path)
    config = str(run_dir.resolve() / "slurm" / "submitted-config.json")
    assert args == ["-m", "pipeline", "run", "--run-dir", str(run_dir.resolve()), "--config", config,
                    "--stages", f"dedupe{hostile}", "--executor", "slurm"]
    _nothing_ran(tmp_path)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_train_job_with_a_hostile_run_dir_config_and_python_runs_nothing_injected(tmp_path, hostile):
    train = pytest.importorskip("slurm.train")
    run_dir = tmp_path / "runs" / hostile
    run_dir.mkdir(parents=True)
    config = tmp_path / f"cfg{hostile.replace('/', '_')}.json"
    py = tmp_path / "py" / hostile.replace("/", "_").replace("\n", "_") / "python"
    job = train.train_job(SlurmConfig(python=str(py)), run_dir, config_path=config)
    fake = tmp_path / "bin"   # srun writes the arguments it got; scontrol names one host
    fake.mkdir()
    (fake / "srun").write_text('#!/bin/bash\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGS_OUT"\n')
    (fake / "scontrol").write_text("#!/bin/bash\necho node1\n")
    for f in fake.iterdir():
        f.chmod(0o755)
    script, out = tmp_path / "job.sh", tmp_path / "args.bin"
    script.write_text(job.script)
    env = {**os.environ, "ARGS_OUT": str(out), "PATH": f"{fake}:{os.environ['PATH']}", "SLURM_JOB_ID": "7",
           "SLURM_JOB_NODELIST": "node1", "SLURM_JOB_NUM_NODES": "1"}
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = out.read_bytes().decode().split("\0")[:-1]
    assert args[2:] == [str(py), "-m", "pretrain.launch", "--nnodes", "1", "--master-addr", "node1",
                        "--master-port", "20007", "--nproc-per-node", "1", "--config", str(config),
                        "--run-dir", str(run_dir.resolve())]
    _nothing_ran(tmp_path)


def test_the_script_header_and_sbatch_lines_stay_comments(tmp_path):
    run_dir = tmp_path / "a\ntouch PWNED\n#SBATCH --wrap=x"
    run_dir.mkdir()
    job = array_job(SlurmConfig(python="/bin/true"), run_dir, "ingest", "read", [0], 0)
    lines = job.script.splitlines()
    body = lines.index("set -euo pipefail")
    # sbatch reads #SBATCH lines up to the first command: all of it must stay comments, none injected
    assert all(line.startswith("#") or not line for line in lines[:body])
    assert not any("--wrap" in line for line in lines[:body] if line.startswith("#SBATCH"))


@pytest.mark.parametrize("key", ["partition", "account", "qos", "time", "mem", "train_partition", "train_time"])
@pytest.mark.parametrize("value", ["a b", "x;touch PWNED", "$(touch PWNED)", "a\n#SBATCH --wrap=x", "'q'"])
def test_values_that_go_into_sbatch_lines_must_be_plain_tokens(key, value):
    with pytest.raises(cfgmod.ConfigError, match=f"slurm.{key}"):
        cfgmod.load(data={"slurm": {key: value}})


SHELL_CALLS = {"system", "popen", "getoutput", "getstatusoutput"}


def _shell_uses(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{path}:{node.lineno}: shell={ast.unparse(kw.value)}")
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in SHELL_CALLS and isinstance(f.value, ast.Name) \
                    and f.value.id in ("os", "subprocess", "commands"):
                found.append(f"{path}:{node.lineno}: {f.value.id}.{f.attr}")
    return found


def test_no_shell_true_or_os_system_anywhere_in_the_package():
    assert [hit for p in package_files() for hit in _shell_uses(p)] == []
