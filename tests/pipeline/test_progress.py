"""Progress off a terminal: a line every PROGRESS_INTERVAL_S seconds naming the step, documents done of the
known total, docs/s and an ETA; counted across worker processes; and a closing line with the true total."""
import re
import subprocess
import sys

from common import progress
from tests.conftest import REPO, cli_env
from tests.pipeline.helpers import stats, write_jsonl


def test_progress_lines_count_every_document_across_workers(tmp_path):
    words = "river stone lantern orchard copper meadow harbor violet ember canyon".split()
    docs = [{"id": f"d{i}", "text": " ".join(words[(i * k) % 10] for k in range(1, 60)) + f" number {i}"}
            for i in range(3000)]
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    env = cli_env()
    env["NO_PROGRESS"] = ""
    env["PROGRESS_INTERVAL_S"] = "0.02"
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--run-dir", str(run), "--input", str(src),
                           "--stages", "ingest,dedupe", "--set", "run.workers=2",
                           "--set", "ingest.docs_per_shard=500"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("[progress] dedupe/signatures:")]
    assert lines, proc.stderr[-3000:]
    for line in lines:
        assert re.search(r"\d+/6 tasks, [\d,]+/3,000 docs \(\d+%\), [\d,]+ docs/s, ETA (\d+:\d\d:\d\d|unknown)", line), line
    kept = stats(run, "ingest")["kept"]
    assert kept == 3000
    # the workers' counts reach this process: the closing line has every document the step read
    assert lines[-1].endswith("(done)") and "6/6 tasks, 3,000/3,000 docs (100%)" in lines[-1], lines[-1]


def test_progress_line_without_a_known_total_uses_tasks(monkeypatch):
    monkeypatch.setenv("NO_PROGRESS", "1")     # no thread: the line is read directly
    with progress.DocProgress("ingest/read", None, tasks=4) as p:
        assert p.line() == "[progress] ingest/read: 0/4 tasks, ETA unknown"
        progress.tick(3)
        progress.flush_ticks()                   # what a task's end does
        p.task_done()
        line = p.line()
    assert line.startswith("[progress] ingest/read: 1/4 tasks, 3 docs, ") and "docs/s, ETA 0:" in line, line
