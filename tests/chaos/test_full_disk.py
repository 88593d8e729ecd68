"""A full disk mid-stage: the run fails with an error naming the path and "File too large" / "No
space left on device", leaves no completion marker for the failed task, and once space is freed a
re-run matches the uninterrupted run byte for byte.

Two ways to fill the disk: a file-size limit (RLIMIT_FSIZE: writes past it fail with EFBIG; the
SIGXFSZ it also sends is ignored in the child) and, where we may mount, a small tmpfs that is full.
"""
import os
import random
import re
import resource
import shutil
import signal
import subprocess

import orjson
import pytest

from common.io import sha256_file
from tests.chaos.harness import command, finish_and_compare, start, trial_seed
from tests.chaos.registry import all_names

PAGE = 4096


def _file_size_limit(limit: int):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _run_until_it_fails(run, cs, log, preexec_fn=None) -> str:
    proc = start(command(run, cs.stages), log, preexec_fn=preexec_fn)
    rc = proc.wait(timeout=600)
    out = log.read_text(errors="replace")
    assert rc == 1, f"expected exit 1 (a stage failed), got {rc}:\n{out[-3000:]}"
    return out


def _assert_no_marker_for_the_failed_task(run, stages, out) -> str:
    """The failed task (named in the error) has no marker; every marker left vouches for intact files."""
    failed = re.search(r"(\w+)/(\w+) task (\d+) failed", out)
    if failed:   # inside a task: that task has no completion marker
        stage, step, index = failed.groups()
        assert not (run / stage / "_tasks" / step / f"{int(index):05d}.json").exists(), failed.group(0)
    else:        # outside one (a stage's own files): the run must not look finished
        final = run / stages[-1] / ("audit.json" if stages[-1] == "audit" else "stats.json")
        assert not final.exists(), f"{final} was written though the run failed"
    for s in stages:
        for m in (run / s / "_tasks").glob("*/*.json"):
            for rel, digest in orjson.loads(m.read_bytes())["outputs"].items():
                assert sha256_file(run / s / rel) == digest, f"{m} vouches for a damaged {rel}"
    return failed.group(0) if failed else "outside a task"


def _error_line(out: str, what: str) -> str:
    return next((line for line in out.splitlines() if what in line), "")


@pytest.mark.slow
@pytest.mark.parametrize("name", all_names())
def test_file_size_limit_fails_naming_the_path_then_resumes_byte_identical(
        name, reference, stage_or_skip, report, tmp_path):
    cs = stage_or_skip(name)
    seed = trial_seed("fsize", name, 0)
    # half the largest file of one of the stages run (seeded): that stage cannot finish
    limit = reference.largest[random.Random(seed).choice(cs.stages)] // 2
    run = reference.seed_run(cs, tmp_path)
    out = _run_until_it_fails(run, cs, tmp_path / "full.log", _file_size_limit(limit))
    assert re.search(rf"File too large: '{re.escape(str(run))}/[^']+'", out), out[-3000:]
    where = _assert_no_marker_for_the_failed_task(run, cs.stages, out)
    differences = finish_and_compare(reference, cs, run, tmp_path)
    report("file-size-limit", name, [{"stage": name, "seed": seed, "limit": limit,
                                      "failed": where, "error": _error_line(out, "File too large"),
                                      "identical": not differences, "differences": differences[:20]}])
    assert differences == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 64 MiB tmpfs mounted under tmp_path (root only), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _pages(root) -> int:
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in root.rglob("*") if p.is_file())


def _fill(mnt, leave: int):
    """A filler file taking all free space on `mnt` but `leave` bytes."""
    st = os.statvfs(mnt)
    size = st.f_bavail * st.f_frsize - leave
    with open(mnt / "filler", "wb") as fh:
        block = b"\0" * (1 << 20)
        while size > 0:
            size -= fh.write(block[: min(size, len(block))])
    return mnt / "filler"


@pytest.mark.slow
@pytest.mark.parametrize("name", all_names())
def test_full_tmpfs_fails_with_no_space_left_then_resumes_byte_identical_once_freed(
        name, reference, stage_or_skip, report, tmp_path, tmpfs):
    cs = stage_or_skip(name)
    run = reference.seed_run(cs, tmpfs)
    needed = sum(_pages(reference.run_dir / s) for s in cs.stages)
    if not cs.needs:   # the whole pipeline also writes the demo corpus
        needed += _pages(reference.run_dir / "input")
    filler = _fill(tmpfs, needed // 2)
    out = _run_until_it_fails(run, cs, tmp_path / "full.log")
    assert re.search(rf"No space left on device: '{re.escape(str(run))}/[^']+'", out), out[-3000:]
    where = _assert_no_marker_for_the_failed_task(run, cs.stages, out)
    filler.unlink()
    differences = finish_and_compare(reference, cs, run, tmp_path)
    report("full-tmpfs", name, [{"stage": name, "seed": trial_seed("tmpfs", name, 0), "free_bytes": needed // 2,
                                 "failed": where, "error": _error_line(out, "No space left"),
                                 "identical": not differences, "differences": differences[:20]}])
    assert differences == []


WRITERS = {   # each writer of common/io and the ledger as the stages use it, writing ~1 MB of random bytes
    "zstd_lines": "with ZstdLineWriter(p) as w:\n    for i in range(64): w.write_line(os.urandom(16384).hex())",
    "atomic_bytes": "atomic_write_bytes(p, os.urandom(1 << 20))",
    "ledger": ("w = LedgerWriter(p)\ntry:\n    for i in range(2000): w.kept(os.urandom(600).hex())\n"
               "    w.close()\nexcept BaseException:\n    w.abort()\n    raise"),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_write_past_the_file_size_limit_names_the_file(writer, tmp_path):
    import sys
    from tests.conftest import REPO, cli_env
    target = tmp_path / "out" / "file.bin"
    code = ("import os, sys\nfrom common.io import ZstdLineWriter, atomic_write_bytes\n"
            "from pipeline.ledger import LedgerWriter\np = sys.argv[1]\n" + WRITERS[writer])
    proc = subprocess.run([sys.executable, "-c", code, str(target)], cwd=REPO, env=cli_env(), capture_output=True,
                          text=True, preexec_fn=_file_size_limit(100_000), timeout=120)
    assert proc.returncode != 0
    assert f"OSError: [Errno 27] File too large: '{target}'" in proc.stderr, proc.stderr[-2000:]
    assert not target.exists() and [p.name for p in target.parent.iterdir()] == []   # temp file removed


def test_a_task_that_cannot_write_its_timing_log_leaves_no_marker(tmp_path):
    from tests.pipeline.helpers import run_stages, write_jsonl
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "some text"}])
    run = tmp_path / "run"
    (run / "ingest").mkdir(parents=True)
    (run / "ingest" / "logs").write_text("a file where the logs directory goes: every write there fails")
    with pytest.raises(RuntimeError, match="ingest/read task 0 failed"):
        run_stages(run, [src])
    assert not (run / "ingest" / "_tasks" / "read" / "00000.json").exists()
