"""Name -> stage. Stages owned by other packages are looked up lazily."""
from __future__ import annotations

import importlib

STAGE_CLASSES = {
    "ingest": "pipeline.ingest:IngestStage",
    "dedupe": "pipeline.dedupe:DedupeStage",
    "cbrn": "filters.stage:CbrnStage",
    "tokenize": "pipeline.tokenize:TokenizeStage",
}
# Stages run by `pipeline run` that are not block pipelines: name -> "module:function(run_context)"
RUNNERS = {
    "train": "pretrain.pipeline_stage:run_train_stage",
    "audit": "filters.audit:run_audit_stage",
}


def _resolve(spec: str):
    mod, attr = spec.split(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and (e.name == mod or mod.startswith(e.name + ".")):
            return None
        raise
    return getattr(module, attr, None)


def get_stage(name: str):
    spec = STAGE_CLASSES.get(name)
    if spec is None:
        raise KeyError(f"{name!r} is not a block stage")
    cls = _resolve(spec)
    if cls is None:
        raise KeyError(f"stage {name!r} is not available in this version")
    return cls()


def get_runner(name: str):
    spec = RUNNERS.get(name)
    return _resolve(spec) if spec else None


def available(name: str) -> bool:
    if name in STAGE_CLASSES:
        return _resolve(STAGE_CLASSES[name]) is not None
    if name in RUNNERS:
        return get_runner(name) is not None
    return False
