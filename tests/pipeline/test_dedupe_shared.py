"""Near-dedupe quality on the shared corpus with injected duplicates (skips without ../shared/data)."""
import gzip
import json
import re

import pytest

from common import reasons as R
from common.io import read_jsonl
from tests.pipeline.helpers import ledger_rows, run_stages

WORD = re.compile(r"[^\W_]+")


def _shingles(text, n=5):
    w = WORD.findall(text.lower())
    return {tuple(w)} if len(w) < n else {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


@pytest.mark.slow
@pytest.mark.shared_data
def test_recall_and_precision_on_injected_duplicates(tmp_path, shared_data):
    corpus = shared_data / "corpus_dupes"
    truth = json.load(gzip.open(corpus / "ground_truth.json.gz"))["injected"]
    run = tmp_path / "run"
    run_stages(run, [corpus / "part-*.jsonl.zst"], stages=("ingest", "dedupe"), workers=2)
    removed = {r["id"] for r in ledger_rows(run, "dedupe") if r["decision"] == R.REMOVED}

    members = set(truth) | {v["original_id"] for v in truth.values()}
    precision = sum(1 for r in removed if r in members) / len(removed)

    near = {k: v["original_id"] for k, v in truth.items() if v["type"] == "near"}
    wanted = set(near) | set(near.values())
    texts = {d["id"]: d["text"] for f in sorted(corpus.glob("part-*.jsonl.zst")) for d in read_jsonl(f)
             if d["id"] in wanted}
    similar = [k for k, o in near.items()
               if (lambda a, b: len(a & b) / len(a | b))(_shingles(texts[k]), _shingles(texts[o])) >= 0.7]
    recall_near = sum(1 for k in similar if k in removed or near[k] in removed) / len(similar)
    exact = [k for k, v in truth.items() if v["type"] == "exact"]
    recall_exact = sum(1 for k in exact if k in removed or truth[k]["original_id"] in removed) / len(exact)

    print(f"precision={precision:.4f} recall_near(J>=0.7)={recall_near:.4f} recall_exact={recall_exact:.4f}")
    assert recall_exact == 1.0
    assert recall_near >= 0.95
    assert precision >= 0.98
