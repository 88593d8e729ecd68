"""Data stages load only what they use: ingest, dedupe and cbrn never import torch, megatron-core,
matplotlib or transformers (a data worker would pay hundreds of MB and a second of start-up for them)."""
import json
import subprocess
import sys

from tests.conftest import REPO, cli_env
from tests.pipeline.helpers import write_jsonl

NOT_FOR_DATA_STAGES = {"torch", "megatron", "matplotlib", "transformers"}


def test_data_stages_do_not_import_the_trainer_or_plotting_libraries(tmp_path):
    src = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Plain text number {i} about rivers and the hills. " * 8}
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
