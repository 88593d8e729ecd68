"""Run stages in-process on small inputs the tests write themselves."""
from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import zstandard

from common import config as cfgmod
from common.io import read_json
from pipeline.ledger import read_ledger
from pipeline.run import run_pipeline


def run_stages(run_dir: Path, inputs, stages=("ingest",), workers: int = 1, **sections) -> dict:
    data = {"run": {"run_dir": str(run_dir), "workers": workers}}
    if inputs is not None:
        data["ingest"] = {"inputs": [str(i) for i in inputs]}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    cfg = cfgmod.load(data=data)
    return run_pipeline(cfg, stages=list(stages), explicit=True)


def ledger_rows(run_dir: Path, stage: str) -> list[dict]:
    t = read_ledger(Path(run_dir) / stage)
    return [dict(zip(t.column_names, r)) for r in zip(*(t.column(c).to_pylist() for c in t.column_names))]


def stats(run_dir: Path, stage: str) -> dict:
    return read_json(Path(run_dir) / stage / "stats.json")


def write_jsonl(path: Path, records, compress: str = "none") -> Path:
    data = b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)
    if compress == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    elif compress == "gzip":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def assert_books(st: dict) -> None:
    assert st["in"] == st["kept"] + sum(st["removed"].values()) + sum(st["quarantined"].values())
