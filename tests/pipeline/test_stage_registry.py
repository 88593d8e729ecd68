"""The one stage registry: a stage registered after `cbrn` (here a test-only one that trims whitespace)
runs in order, tokenize finds `cbrn` upstream and records its filter record, and the trainer accepts the
shards; every list of stages (data stages, the run's order, the checks) follows the registry."""
import json

import pytest

from common.config import ConfigError
from pipeline.block import Block
from pipeline.stage import ShardFilterStep, Stage, input_shards, merge_block_stats, merge_books
from pipeline.stages import StageSpec, data_stages, register_stage, stage_names, unregister_stage
from tests.conftest import run_cli
from tests.pipeline.helpers import run_stages, stats, write_jsonl


class Trim(Block):
    name = "trim"

    def run(self, docs, task):
        for doc in docs:
            doc.text = doc.text.strip()
            yield doc


class TrimStep(ShardFilterStep):
    def filter_blocks(self, task):
        return [Trim()]


class TrimStage(Stage):
    name = "trim"

    def steps(self, run):
        prev, shards = input_shards(run, self.name)
        return [TrimStep(prev, shards)]

    def finalize(self, run, results):
        prev, _ = input_shards(run, self.name)
        tasks = results["filter"]
        return {**merge_books(tasks).to_dict(), "input_stage": prev, "shards": [t["shard"] for t in tasks],
                "blocks": merge_block_stats(tasks)}


@pytest.fixture
def trim_registered():
    register_stage(StageSpec("trim", f"{__name__}:TrimStage", data=True), after="cbrn")
    yield
    unregister_stage("trim")


def test_a_stage_after_cbrn_keeps_the_data_filtered_and_trainable(tmp_path, trim_registered):
    assert stage_names().index("trim") == stage_names().index("cbrn") + 1 and "trim" in data_stages()
    import random
    rng = random.Random(0)
    words = ("rivers gardens bridges libraries mills valleys orchards harbours markets lanterns meadows "
             "kettles ferries choirs quarries beacons thatch ledgers looms barges hedges almanacs").split()
    docs = [{"id": str(i), "text": "  " + " ".join(rng.choice(words) for _ in range(30)) + ".  "}
            for i in range(120)]
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    run = tmp_path / "run"
    run_stages(run, [src], stages=("ingest", "dedupe", "cbrn", "trim", "tokenize"), workers=1,
               tokenize={"vocab_size": 400})
    assert stats(run, "trim")["input_stage"] == "cbrn" and stats(run, "tokenize")["input_stage"] == "trim"
    manifest = json.loads((run / "tokenize" / "manifest.json").read_text())
    assert manifest["input_stage"] == "trim" and manifest["unfiltered"] is False
    assert manifest["filter"]["stage"] == "cbrn"
    proc = run_cli("-m", "pretrain.train", "--preset", "tiny", "--run-dir", run, "--max-steps", 1,
                   "log.plots=false", 'checkpoint.export_hf="none"', check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "CBRN-filtered: record matches" in proc.stdout


def test_unknown_stages_are_refused_by_the_registry(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hello"}])
    with pytest.raises(ConfigError, match=r"unknown stage 'dedup' \(did you mean 'dedupe'\?\)"):
        run_stages(tmp_path / "run", [src], stages=("ingest", "dedup"))
