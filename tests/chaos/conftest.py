"""Chaos fixtures: one uninterrupted reference run per session, trial reports, a summary line each."""
from __future__ import annotations

import shutil

import pytest

from common.io import atomic_write_json
from tests.chaos.harness import Reference
from tests.chaos.registry import available_stages, chaos_stage

@pytest.fixture(scope="session")
def reference(tmp_path_factory, worker_id) -> Reference:
    """The uninterrupted run every trial compares with: built once per session, shared by the xdist
    workers through a file lock (xdist_group does not group tests under pytest 9)."""
    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    where = (base.parent if worker_id != "master" else base) / "chaos-reference"
    with FileLock(str(where) + ".lock"):
        ref = Reference.load(where)
        if ref is None:
            shutil.rmtree(where, ignore_errors=True)
            ref = Reference.build(where, available_stages())
            ref.save()
    return ref


@pytest.fixture
def stage_or_skip():
    def get(name: str):
        cs = chaos_stage(name)
        if cs is None:
            pytest.skip(f"stage {name!r} has not landed in this checkout")
        return cs
    return get


@pytest.fixture
def report(request, tmp_path):
    """`report(kind, stage, records)`: writes tmp_path/chaos-report.json, returns the summary line."""
    def write(kind: str, stage: str, records: list[dict]) -> str:
        path = tmp_path / "chaos-report.json"
        ok = sum(r["identical"] for r in records)
        mid = sum(r.get("finished_before_signal") is False for r in records)
        atomic_write_json(path, {"kind": kind, "stage": stage, "trials": len(records), "identical": ok,
                                 "records": records})
        how = f", {mid} interrupted mid-run" if any("finished_before_signal" in r for r in records) else ""
        line = (f"chaos {kind} {stage}: {ok}/{len(records)} identical{how}; "
                f"seeds {[r['seed'] for r in records]}; report {path}")
        request.node.user_properties.append(("chaos", line))
        print(line)
        return line
    return write


def pytest_terminal_summary(terminalreporter):
    lines = [v for rep in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
             for k, v in getattr(rep, "user_properties", []) if k == "chaos"]
    if lines:
        terminalreporter.section("chaos trials")
        for line in lines:
            terminalreporter.line(line)
