"""Which stages the chaos trials run, in pipeline order. Adding a stage is one line in ORDER.

A trial of stage X starts from a copy of the reference run holding every available stage before X
(`needs`), runs `python -m pipeline run --stages X`, and compares the whole run directory with the
reference. `pipeline` runs every available stage from an empty run directory.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

# (stage, module that must be importable for it to run); order = pipeline order
ORDER: list[tuple[str, str]] = [
    ("ingest", "pipeline.ingest"),
    ("dedupe", "pipeline.dedupe"),
    ("cbrn", "filters.stage"),
    ("tokenize", "pipeline.tokenize"),
    ("audit", "filters.audit"),
]
WHOLE_PIPELINE = "pipeline"


@dataclass(frozen=True)
class ChaosStage:
    name: str
    stages: tuple[str, ...]   # what `--stages` gets
    needs: tuple[str, ...]    # stage directories copied from the reference before the trial


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def available_stages() -> list[str]:
    return [name for name, module in ORDER if _importable(module)]


def chaos_stage(name: str) -> ChaosStage | None:
    """The trial setup of `name`, or None when its code has not landed in this checkout."""
    avail = available_stages()
    if name == WHOLE_PIPELINE:
        return ChaosStage(name, tuple(avail), ())
    if name not in avail:
        return None
    return ChaosStage(name, (name,), tuple(avail[:avail.index(name)]))


def all_names() -> list[str]:
    """Every name a trial can be parametrised with (unavailable ones skip)."""
    return [name for name, _ in ORDER] + [WHOLE_PIPELINE]
