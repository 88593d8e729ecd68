"""The `[slurm]` section of a run config: what goes into every generated sbatch script."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.config import ConfigError

# values that go into #SBATCH lines must be plain tokens; paths and names go through argv/quoting
_TOKEN = re.compile(r"^[A-Za-z0-9_.:,+\-=/@]*$")


@dataclass(kw_only=True)
class SlurmConfig:
    partition: str = ""
    account: str = ""
    qos: str = ""
    time: str = "04:00:00"            # per array task / job
    cpus_per_task: int = 1
    mem: str = ""                     # e.g. "8G"; empty = cluster default
    max_concurrent: int = 16          # array concurrency cap (%N)
    retries: int = 2                  # resubmit unfinished array tasks this many times
    extra_sbatch: list[str] = field(default_factory=list)   # extra "#SBATCH ..." options, e.g. "--exclusive"
    python: str = ""                  # interpreter inside jobs; default: the submitting one
    # training job
    train_partition: str = ""
    train_nodes: int = 1
    train_gpus_per_node: int = 0
    train_cpus_per_task: int = 2
    train_procs_per_node: int = 1     # one process per GPU: the training world is train_nodes x this
    train_gpu_memory_gb: float = 80.0  # per GPU; `python -m pretrain.plan` and submission check the layout fits
    train_time: str = "24:00:00"
    signal_seconds: int = 120         # USR1 this long before the time limit: checkpoint, requeue

    def validate(self) -> None:
        for name in ("partition", "account", "qos", "time", "mem", "train_partition", "train_time"):
            value = getattr(self, name)
            if not _TOKEN.match(value):
                raise ConfigError(f"slurm.{name}: {value!r} is not a plain SLURM value "
                                  f"(letters, digits and _.:,+-=/@ only)")
        for name in ("cpus_per_task", "max_concurrent", "train_nodes", "train_cpus_per_task",
                     "train_procs_per_node"):
            if getattr(self, name) < 1:
                raise ConfigError(f"slurm.{name}: must be >= 1")
        if not self.train_gpu_memory_gb > 0:
            raise ConfigError(f"slurm.train_gpu_memory_gb: must be > 0, got {self.train_gpu_memory_gb}")
        if self.retries < 0 or self.train_gpus_per_node < 0 or self.signal_seconds < 0:
            raise ConfigError("slurm.retries / train_gpus_per_node / signal_seconds: must be >= 0")
        for i, line in enumerate(self.extra_sbatch):
            if not line.startswith("--") or any(c in line for c in "\n\r\x00"):
                raise ConfigError(f"slurm.extra_sbatch[{i}]: {line!r} must be one option starting with '--'")
