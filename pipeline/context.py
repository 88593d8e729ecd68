"""The contexts stages and blocks run in: `RunContext` (a run directory and its resolved config) and
`TaskContext` (what a block sees while one task runs: its ledger and where to write), and
`load_run_context` (how a worker process or a SLURM task finds both again from the run directory)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import config as cfgmod
from common.config import RunConfig
from common.io import read_json
from common.paths import inside
from pipeline.document import Document
from pipeline.ledger import LedgerWriter

@dataclass
class RunContext:
    run_dir: Path
    config: RunConfig

    def stage_dir(self, stage: str) -> Path:
        return inside(self.run_dir, stage)

    def path(self, *parts: str) -> Path:
        return inside(self.run_dir, *parts)


class TaskContext:
    """What a block sees while it runs: the ledger of its task and where to write."""

    def __init__(self, run: RunContext, stage: str, step: str, index: int):
        self.run = run
        self.stage = stage
        self.step = step
        self.index = index
        self.ledger: LedgerWriter | None = None
        self.current_block = None  # the running block's pipeline.block.BlockStats
        self.outputs: list[Path] = []

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def stage_dir(self) -> Path:
        return self.run.stage_dir(self.stage)

    def keep(self, doc: Document, detail: dict | None = None) -> None:
        self.ledger.kept(doc.id, detail)

    def remove(self, doc_id: str, reason: str, detail: dict | None = None) -> None:
        from common.reasons import REMOVED
        self._drop(doc_id, REMOVED, reason, detail)

    def quarantine(self, doc_id: str, reason: str, detail: dict | None = None) -> None:
        from common.reasons import QUARANTINED
        self._drop(doc_id, QUARANTINED, reason, detail)

    def _drop(self, doc_id, decision, reason, detail) -> None:
        self.ledger.add(doc_id, decision, reason, detail)
        if self.current_block is not None:
            self.current_block.dropped[reason] += 1

    def add_output(self, path: Path) -> Path:
        self.outputs.append(Path(path))
        return Path(path)


def load_run_context(run_dir: str | Path) -> RunContext:
    """The context of an existing run (what worker processes and SLURM tasks use)."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json; is {run_dir} a run directory?")
    data = read_json(path)
    data.setdefault("run", {})["run_dir"] = str(run_dir)
    cfg = cfgmod.load(data=data)
    return RunContext(run_dir=run_dir, config=cfg)
