"""One CLI dialect and no silent surprises: `--set SECTION.KEY=VALUE` in the trainer as in the pipeline
(the older positional form still read, with a note); `pretrain.launch --help` shows its own options and
the trainer's; `--stages` help names the stages; a run directory that is a file is refused with what to
do; the demo corpus and a tokenizer smaller than asked are announced; `filters.cbrn` takes --labeled."""
from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.pipeline.helpers import write_jsonl


def test_trainer_takes_set_and_still_reads_the_older_form(capsys):
    from pretrain.train import parse_args, resolve_config
    cfg, _ = resolve_config(parse_args(["--preset", "tiny", "--set", "train.seed=5", "--set", "train.log.every=3"]))
    assert (cfg.seed, cfg.log.every) == (5, 3)
    assert "older form" not in capsys.readouterr().err
    cfg, _ = resolve_config(parse_args(["--preset", "tiny", "seed=6"]))
    assert cfg.seed == 6 and "prefer --set train.KEY=VALUE" in capsys.readouterr().err


def test_help_texts_name_their_options():
    launch = run_cli("-m", "pretrain.launch", "--help").stdout
    assert "--nproc-per-node" in launch and "--nnodes" in launch and "--max-steps" in launch and "--set" in launch
    stages = run_cli("-m", "pipeline", "run", "--help").stdout
    assert "ingest,dedupe,cbrn,tokenize" in stages.replace("\n", "").replace(" ", "")
    cbrn = run_cli("-m", "filters.cbrn", "evaluate", "--help").stdout
    assert "--labeled" in cbrn


def test_run_dir_that_is_a_file_is_refused_with_the_fix(tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("not a directory\n")
    proc = run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", blocker, "--stages", "ingest", check=False)
    assert proc.returncode == 2 and "a file (or a path through a file) is in the way" in proc.stderr
    assert "Errno" not in proc.stderr


@pytest.mark.parametrize("given_input", [False, True])
def test_demo_corpus_and_small_tokenizer_are_announced(tmp_path, given_input):
    run = tmp_path / "run"
    args = ["-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--workers", "1"]
    if given_input:
        src = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": f"Short note number {i} on the weather."}
                                                    for i in range(5)])
        proc = run_cli(*args, "--input", src, "--stages", "ingest,tokenize", "--set", "tokenize.allow_unfiltered=true",
                       "--set", "tokenize.vocab_size=4096")
        assert "no --input given" not in proc.stderr
        assert "asked for vocab_size 4096, the corpus gave" in proc.stderr
    else:
        proc = run_cli(*args, "--stages", "ingest")
        assert "no --input given: ingesting the built-in demo corpus" in proc.stderr


def test_an_input_typo_leaves_nothing_behind(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("-m", "pipeline", "run", "--preset", "tiny", "--run-dir", run, "--input", tmp_path / "nope-*.jsonl",
                   check=False)
    assert proc.returncode == 2 and "no file matches" in proc.stderr and not run.exists()


def test_an_unquoted_glob_gets_a_hint(tmp_path):
    """`--input data/*.jsonl` unquoted: the shell passes several files, argparse sees extra arguments; the
    error says what probably happened and how to write it, and nothing is written."""
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "text": "one"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "b", "text": "two"}])
    proc = run_cli("-m", "pipeline", "run", "--run-dir", tmp_path / "run", "--input", a, b, check=False)
    assert proc.returncode == 2
    assert f"unrecognized arguments: {b}" in proc.stderr and "quote the pattern" in proc.stderr
    assert not (tmp_path / "run").exists()
