"""Executors: a third one is a class and one registry line (here an in-process executor defined by the
test), and its outputs equal the local executor's byte for byte; an unknown name is refused by name."""
import pytest

from pipeline.executor import EXECUTORS, Executor, get_executor, register_executor
from pipeline.stage import execute_task
from tests.conftest import tree_digest
from tests.pipeline.helpers import run_stages, write_jsonl


class InlineExecutor(Executor):
    """Every task in this process, one after another."""

    def run_step(self, run, stage, step, tasks: list[int]) -> None:
        for i in tasks:
            execute_task(run, stage, step, i)


@pytest.fixture
def inline_registered():
    register_executor("inline", f"{__name__}:InlineExecutor")
    yield
    EXECUTORS.pop("inline", None)


def test_a_registered_executor_runs_the_stages_byte_identical_to_local(tmp_path, inline_registered):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": f"document {i % 7} about gardens and rivers"}
                                              for i in range(60)])
    digests = []
    for kind in ("local", "inline"):
        run = tmp_path / kind / "run"
        run_stages(run, [src], stages=("ingest", "dedupe"), workers=2, run={"executor": kind})
        digests.append(tree_digest(run))
    assert digests[0] and digests[0] == digests[1]


def test_an_unknown_executor_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown executor 'locl' \(did you mean 'local'\?\); known: local, slurm"):
        get_executor("locl", 2)
