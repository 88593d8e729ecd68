"""Paths that escape the run directory, through `..`, absolute parts or symlinks, are refused:
nothing is read from or written outside it."""
import os
import re

import orjson
import pytest

from common.paths import PathEscapeError, inside
from tests.pipeline.helpers import run_stages, write_jsonl


@pytest.mark.parametrize("parts", [("..", "x"), ("a", "..", "..", "x"), ("/etc/passwd",), ("ingest", "/tmp"),
                                   ("a/../../x",)])
def test_dot_dot_and_absolute_parts_are_refused(tmp_path, parts):
    with pytest.raises(PathEscapeError, match="escapes the run directory"):
        inside(tmp_path, *parts)


def test_a_symlink_leading_outside_is_refused_and_one_staying_inside_is_not(tmp_path):
    from common.paths import refuse_escaping_links
    root, outside = tmp_path / "run", tmp_path / "outside"
    (root / "stage").mkdir(parents=True)
    outside.mkdir()
    os.symlink(outside, root / "out")
    os.symlink(root / "stage", root / "alias")
    with pytest.raises(PathEscapeError):
        inside(root, "out", "file")
    assert inside(root, "alias", "file") == root / "alias" / "file"
    with pytest.raises(PathEscapeError, match=f"'{root / 'out'}' escapes the run directory"):
        refuse_escaping_links(root)
    os.unlink(root / "out")
    refuse_escaping_links(root)          # the inside link alone is fine


def _input(tmp_path):
    return write_jsonl(tmp_path / "in.jsonl", [{"id": f"d{i}", "text": f"text number {i}"} for i in range(5)])


@pytest.mark.parametrize("link", ["ingest", "ingest/shards", "ingest/ledger", "ingest/_tasks/read", "logs",
                                  "ingest/quarantine"])
def test_a_run_directory_holding_a_link_to_outside_is_refused_before_anything_is_written_there(tmp_path, link):
    src, run, outside = _input(tmp_path), tmp_path / "run", tmp_path / "outside"
    outside.mkdir()
    (run / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, run / link)
    named = rf"'({re.escape(str(run / link))}|{re.escape(link)})' escapes the run directory"
    with pytest.raises(PathEscapeError, match=named):
        run_stages(run, [src])
    assert os.listdir(outside) == []


def test_a_linked_file_leading_outside_is_refused_too(tmp_path):
    src, run, secret = _input(tmp_path), tmp_path / "run", tmp_path / "secret.json"
    secret.write_text("{}")
    (run / "ingest" / "_tasks" / "read").mkdir(parents=True)
    os.symlink(secret, run / "ingest" / "_tasks" / "read" / "00000.json")
    with pytest.raises(PathEscapeError):
        run_stages(run, [src])
    assert secret.read_text() == "{}"


def test_a_shard_name_with_dot_dot_in_stats_json_is_refused_by_the_next_stage(tmp_path):
    src, run = _input(tmp_path), tmp_path / "run"
    run_stages(run, [src])
    stats_path = run / "ingest" / "stats.json"
    st = orjson.loads(stats_path.read_bytes())
    st["shards"][0]["name"] = "../../../escaped"
    stats_path.write_bytes(orjson.dumps(st))
    with pytest.raises(PathEscapeError, match="escapes the run directory"):
        run_stages(run, [src], stages=("dedupe",))
    assert not (tmp_path / "escaped.jsonl.zst").exists()
