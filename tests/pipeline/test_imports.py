"""Data stages load only what they use: ingest, dedupe and cbrn never import torch, megatron-core,
matplotlib or transformers, nor do tokenize's encode workers (a data worker would pay hundreds of MB and a
second of start-up for them)."""
import json
import subprocess
import sys

from tests.conftest import REPO, cli_env, run_cli
from tests.pipeline.helpers import write_jsonl

NOT_FOR_DATA_STAGES = {"torch", "megatron", "matplotlib", "transformers"}


def test_data_stages_do_not_import_the_trainer_or_plotting_libraries(tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Plain text number {i} about rivers and the old fever hospital. " * 8}
                                                for i in range(20)])
    code = ("import json, sys\nfrom tests.pipeline.helpers import run_stages\n"
            "run_stages(sys.argv[1], [sys.argv[2]], workers=1, stages=('ingest', 'dedupe', 'cbrn'))\n"
            "print('MODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run"), str(src)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.split("MODULES", 1)[1]))
    assert "fasttext" in loaded  # the cbrn stage did run its classifier in this process
    assert not loaded & NOT_FOR_DATA_STAGES, sorted(loaded & NOT_FOR_DATA_STAGES)


def test_the_encode_step_does_not_import_torch_or_megatron(tmp_path):
    """Encode workers write Megatron shards with numpy (megatron-core's builder, which imports torch,
    runs once in the merge step): a fresh process runs one encode task and lists what it loaded."""
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Plain text number {i} about rivers. " * 8}
                                                for i in range(40)])
    run = tmp_path / "run"
    setup = ("import sys\nfrom tests.pipeline.helpers import run_stages\n"
             "run_stages(sys.argv[1], [sys.argv[2]], workers=1, stages=('ingest', 'tokenize'),"
             " tokenize={'allow_unfiltered': True, 'vocab_size': 300})\n")
    run_cli("-c", setup, run, src)
    encode = ("import json, sys\nfrom pipeline.context import load_run_context\n"
              "from pipeline.stage import execute_task\nfrom pipeline.stages import get_stage\n"
              "run = load_run_context(sys.argv[1]); stage = get_stage('tokenize')\n"
              "step = next(s for s in stage.steps(run) if s.name == 'encode')\n"
              "execute_task(run, stage, step, 0)\n"
              "print('MODULES', json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(json.loads(run_cli("-c", encode, run).stdout.split("MODULES", 1)[1]))
    assert "tokenizers" in loaded                  # it did encode
    assert not loaded & NOT_FOR_DATA_STAGES, sorted(loaded & NOT_FOR_DATA_STAGES)
