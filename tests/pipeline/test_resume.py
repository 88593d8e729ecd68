"""Determinism across worker counts, kill -9 + resume, corrupted outputs, changed configs."""
import os
import shutil

import pytest

from common.config import ConfigError
from tests.conftest import kill_9_mid_run, run_cli, tree_digest
from tests.pipeline.helpers import run_stages

STAGES = "ingest,dedupe"


def _run(run_dir, workers=2, check=True):
    return run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run_dir, "--stages", STAGES,
                   "--workers", workers, check=check)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    _run(run, workers=2)
    return tree_digest(run)


def test_workers_1_and_2_give_identical_files(tmp_path, reference):
    run = tmp_path / "w1"
    _run(run, workers=1)
    assert tree_digest(run) == reference


def test_kill_9_mid_run_then_rerun_gives_identical_files(tmp_path, reference):
    run = tmp_path / "killed"
    kill_9_mid_run(["-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", STAGES,
                    "--workers", "2"], started=run / "ingest" / "_tasks", final=run / "dedupe" / "stats.json",
                   seed=int(os.environ.get("KILL_SEED", "3")), max_delay_s=2.5, timeout=60,
                   reset=lambda: shutil.rmtree(run, ignore_errors=True))
    _run(run, workers=2)
    assert tree_digest(run) == reference


def test_a_corrupted_output_is_detected_and_redone(tmp_path, reference):
    run = tmp_path / "corrupt"
    _run(run)
    shard = sorted((run / "dedupe" / "shards").glob("*.jsonl.zst"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    (run / "dedupe" / "stats.json").unlink()
    _run(run)
    assert tree_digest(run) == reference


def test_a_half_written_temp_file_left_behind_is_not_trusted(tmp_path, reference):
    run = tmp_path / "half"
    _run(run)
    name = sorted((run / "dedupe" / "shards").glob("*.jsonl.zst"))[0].name
    marker = sorted((run / "dedupe" / "_tasks" / "filter").glob("*.json"))[0]
    marker.unlink()
    (run / "dedupe" / "shards" / name).write_bytes(b"\x28\xb5\x2f\xfd garbage")
    _run(run)
    assert tree_digest(run) == reference


def test_rerun_with_a_different_config_is_refused(tmp_path):
    run = tmp_path / "r"
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "hello there"}\n')
    run_stages(run, [src])
    with pytest.raises(ConfigError, match="dedupe.bands"):
        run_stages(run, [src], dedupe={"bands": 3})


def test_report_only_settings_are_not_part_of_the_run_identity(tmp_path):
    """cbrn.audit_sample / audit_labeled change only the audit report: a run may change them (config.json
    records the new values), while a setting that changes outputs is still refused."""
    from common.io import read_json
    run = tmp_path / "r"
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "hello there"}\n')
    run_stages(run, [src], cbrn={"audit_sample": 5})
    run_stages(run, [src], cbrn={"audit_sample": 7, "audit_labeled": str(src)})
    assert read_json(run / "config.json")["cbrn"]["audit_sample"] == 7
    with pytest.raises(ConfigError, match=r"cbrn.threshold") as e:
        run_stages(run, [src], cbrn={"audit_sample": 9, "threshold": 0.5})
    assert "audit_sample" not in str(e.value)


def test_books_and_ledger_rows_agree_for_every_stage(tmp_path):
    from pipeline.ledger import books_from_ledger
    from tests.pipeline.helpers import stats
    run = tmp_path / "books"
    _run(run)
    for stage in STAGES.split(","):
        st = stats(run, stage)
        recount = books_from_ledger(run / stage).to_dict()
        assert recount == {k: st[k] for k in ("in", "kept", "removed", "quarantined")}


def test_a_document_lost_between_stages_fails_the_books_check(tmp_path):
    """The end-of-stage books check runs: a stage whose input count differs from what its input stage
    kept (here: the input stage's record says one more document than its shards hold) fails, naming
    both counts, and writes no stats.json."""
    import json
    run = tmp_path / "lost"
    run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", "ingest", "--workers", 1)
    stats = run / "ingest" / "stats.json"
    data = json.loads(stats.read_text())
    data["kept"] += 1
    stats.write_text(json.dumps(data))
    proc = run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages", "dedupe",
                   "--workers", 1, check=False)
    assert proc.returncode != 0
    assert "books do not balance with its input" in proc.stderr and f"kept {data['kept']}" in proc.stderr
    assert not (run / "dedupe" / "stats.json").exists()


def test_every_data_stage_and_the_audit_give_identical_files_for_1_and_2_workers(tmp_path):
    """Worker-count invariance beyond ingest and dedupe: cbrn, tokenize and the audit too (the run
    directories share their name: the audit records it)."""
    digests = []
    for workers in (1, 2):
        run = tmp_path / f"w{workers}" / "run"
        run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--stages",
                "ingest,dedupe,cbrn,tokenize,audit", "--workers", workers)
        digests.append(tree_digest(run))
    assert any(k.startswith("cbrn/") for k in digests[0]) and any(k.startswith("audit/") for k in digests[0])
    assert digests[0] == digests[1]
