"""The one stage registry: name, order, implementation, whether it is a data stage, whether what it keeps
passed the CBRN filter. Everything that lists stages reads it: the run's stage order and its checks,
`DATA_STAGES` (`data_stages()`), the input stage of a data stage, the SLURM chain, `pipeline check`, the
run summary and the audit's accounting. Implementations are "module:attr" strings, imported only when
a stage runs, so a stage owned by another package (cbrn: filters, train: pretrain) costs nothing until
then.

Adding a stage: a `pipeline.stage.Stage` subclass (a block stage; `ShardFilterStep` makes a per-shard
filter a few lines) or a runner `function(run_context) -> dict`, and one `StageSpec` here, or
`register_stage(spec, after=...)` from a plugin or a test. A data stage reads the kept shards of the
nearest earlier data stage that ran, so a stage placed after `cbrn` keeps the data trainable: the
tokenize stage finds `cbrn` upstream and records its filter record.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    name: str
    impl: str  # "module:Class" of a pipeline.stage.Stage, or "module:function" of a runner(run_context)
    data: bool  # reads the previous data stage's shards, writes shards and a ledger; its books balance
    runner: bool = False  # impl is a function, not a block Stage
    cbrn_filter: bool = False  # the documents it keeps passed the CBRN filter (the trainer's provenance)


STAGES: list[StageSpec] = [
    StageSpec("ingest", "pipeline.ingest:IngestStage", data=True),
    StageSpec("dedupe", "pipeline.dedupe:DedupeStage", data=True),
    StageSpec("cbrn", "filters.stage:CbrnStage", data=True, cbrn_filter=True),
    StageSpec("tokenize", "pipeline.tokenize:TokenizeStage", data=True),
    StageSpec("train", "pretrain.pipeline_stage:run_train_stage", data=False, runner=True),
    StageSpec("audit", "filters.audit:run_audit_stage", data=False, runner=True),
]


def register_stage(spec: StageSpec, *, after: str) -> None:
    """Insert `spec` right after the stage named `after` (a plugin's or a test's stage)."""
    if any(s.name == spec.name for s in STAGES):
        raise ValueError(f"stage {spec.name!r} is registered already")
    STAGES.insert(stage_names().index(after) + 1, spec)


def unregister_stage(name: str) -> None:
    STAGES[:] = [s for s in STAGES if s.name != name]


def stage_names() -> list[str]:
    return [s.name for s in STAGES]


def data_stages() -> tuple[str, ...]:
    return tuple(s.name for s in STAGES if s.data)


def spec(name: str) -> StageSpec:
    for s in STAGES:
        if s.name == name:
            return s
    close = difflib.get_close_matches(name, stage_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise KeyError(f"unknown stage {name!r}{hint}; known: {', '.join(stage_names())}")


def check_names(names) -> None:
    """Raise a ConfigError naming the first unknown stage in `names` (run.stages, --stages)."""
    from common.config import ConfigError
    for name in names:
        try:
            spec(name)
        except KeyError as e:
            raise ConfigError(f"run.stages: {e.args[0]}") from None


def _resolve(impl: str):
    mod, attr = impl.split(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and (e.name == mod or mod.startswith(e.name + ".")):
            return None  # the package is not part of this checkout
        raise
    return getattr(module, attr, None)


def get_stage(name: str):
    s = spec(name)
    if s.runner:
        raise KeyError(f"{name!r} is not a block stage")
    cls = _resolve(s.impl)
    if cls is None:
        raise KeyError(f"stage {name!r} is not available in this version")
    return cls()


def get_runner(name: str):
    s = spec(name)
    return _resolve(s.impl) if s.runner else None


def available(name: str) -> bool:
    try:
        return _resolve(spec(name).impl) is not None
    except KeyError:
        return False
