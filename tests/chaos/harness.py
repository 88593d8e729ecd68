"""Chaos harness: run a stage in its own process group, interrupt it at a seeded random moment,
re-run it, and compare every output file's sha256 with an uninterrupted reference run.

Every run directory is named `run` (the audit records the directory's name), one per trial.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from common.io import atomic_write_json, read_json

from tests.chaos.registry import WHOLE_PIPELINE, ChaosStage
from tests.conftest import REPO, cli_env, run_cli, tree_digest

RUN_NAME = "run"
PRESET = "tiny"
WORKERS = 2          # > 1, so the local executor's spawned workers are part of every trial


def trials() -> int:
    """Trials per stage: CHAOS_TRIALS (`make chaos N=50`), default 5 for CI."""
    return int(os.environ.get("CHAOS_TRIALS", "5"))


def trial_seed(kind: str, stage: str, i: int) -> int:
    """A recorded per-trial seed; CHAOS_SEED shifts the whole family."""
    base = os.environ.get("CHAOS_SEED", "0")
    return int(hashlib.sha256(f"{base}:{kind}:{stage}:{i}".encode()).hexdigest()[:8], 16)


def command(run_dir: Path, stages: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", "--preset", PRESET, "--run-dir", str(run_dir),
            "--stages", ",".join(stages), "--workers", str(WORKERS)]


def start(cmd: list[str], log: Path, preexec_fn=None) -> subprocess.Popen:
    """Start `cmd` as the leader of a new process group (workers join it), output to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=cli_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=preexec_fn)


def invocations(run_dir: Path) -> int:
    """Lines in logs/invocations.jsonl: one appears when a run has set up its directory."""
    p = run_dir / "logs" / "invocations.jsonl"
    return p.read_bytes().count(b"\n") if p.is_file() else 0


def wait_for_work(proc: subprocess.Popen, run_dir: Path, before: int, timeout: float = 180) -> None:
    """Until the run has recorded its invocation (startup and imports are over) or has exited."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and invocations(run_dir) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_dir}: the run did not start within {timeout} s")
        time.sleep(0.01)


def group_alive(pgid: int) -> list[int]:
    """Pids of the group that are still running (zombies do not count: they run nothing)."""
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def signal_group(proc: subprocess.Popen, sig: int, timeout: float = 60) -> float:
    """Send `sig` to the whole process group and wait until every member has stopped; returns the
    seconds that took. A group still alive after `timeout` is killed and reported as an error."""
    t0 = time.monotonic()
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    while group_alive(proc.pid):
        if time.monotonic() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"process group {proc.pid} ignored {signal.Signals(sig).name} for {timeout} s")
        time.sleep(0.02)
    proc.wait()
    return time.monotonic() - t0


def markers(run_dir: Path, stages: tuple[str, ...]) -> int:
    return sum(len(list((run_dir / s / "_tasks").glob("*/*.json"))) for s in stages)


def diff(got: dict, want: dict) -> list[str]:
    """Paths whose digest differs, with a tag saying how."""
    out = []
    for k in sorted(set(got) | set(want)):
        if k not in want:
            out.append(f"extra {k}")
        elif k not in got:
            out.append(f"missing {k}")
        elif got[k] != want[k]:
            out.append(f"differs {k}")
    return out


def build_demo_corpus(run_dir: Path) -> None:
    """The demo corpus inside `run_dir`, as the ingest stage would build it."""
    from common import config as cfgmod
    from pipeline.democorpus import ensure_demo_corpus
    from pipeline.run import prepare_run_dir
    cfg = cfgmod.load(preset=PRESET, data={"run": {"run_dir": str(run_dir), "workers": WORKERS}})
    ensure_demo_corpus(prepare_run_dir(cfg))


@dataclass
class Reference:
    """One uninterrupted run of every available stage, stage by stage, with each stage's timing."""
    run_dir: Path
    work_s: dict = field(default_factory=dict)   # stage -> seconds from invocation to exit
    largest: dict = field(default_factory=dict)  # stage -> size of its largest file
    digest: dict = field(default_factory=dict)

    @classmethod
    def build(cls, where: Path, stages: list[str]) -> "Reference":
        ref = cls(where / RUN_NAME)
        build_demo_corpus(ref.run_dir)   # trials start with it, so stage timings must not include it
        for s in stages:
            before = invocations(ref.run_dir)
            proc = start(command(ref.run_dir, (s,)), where / "reference.log")
            wait_for_work(proc, ref.run_dir, before)
            t0 = time.monotonic()
            rc = proc.wait()
            ref.work_s[s] = time.monotonic() - t0
            if rc != 0:
                raise AssertionError(f"reference run of {s} failed ({rc}); see {where / 'reference.log'}:\n"
                                     + (where / "reference.log").read_text()[-4000:])
            files = [p for p in (ref.run_dir / s).rglob("*") if p.is_file()]
            ref.largest[s] = max((p.stat().st_size for p in files), default=0)
        ref.digest = tree_digest(ref.run_dir)
        return ref

    def save(self) -> None:
        atomic_write_json(self.run_dir.parent / "reference.json",
                          {"work_s": self.work_s, "largest": self.largest, "digest": self.digest})

    @classmethod
    def load(cls, where: Path) -> "Reference | None":
        p = where / "reference.json"
        return cls(where / RUN_NAME, **read_json(p)) if p.is_file() else None

    def work_seconds(self, cs: ChaosStage) -> float:
        return sum(self.work_s[s] for s in cs.stages)

    def expected(self, cs: ChaosStage) -> dict:
        """The reference digest of what a finished trial of `cs` holds."""
        keep = {"config.json", "input", *cs.needs, *cs.stages}
        return {k: v for k, v in self.digest.items() if Path(k).parts[0] in keep}

    def seed_run(self, cs: ChaosStage, where: Path) -> Path:
        """A fresh run directory holding what `cs` starts from (nothing, for the whole pipeline)."""
        run = where / RUN_NAME
        where.mkdir(parents=True, exist_ok=True)
        if cs.name != WHOLE_PIPELINE:
            run.mkdir()
            shutil.copy2(self.run_dir / "config.json", run / "config.json")
            for part in ("input", *cs.needs):
                if (self.run_dir / part).exists():
                    shutil.copytree(self.run_dir / part, run / part, ignore=shutil.ignore_patterns("logs"))
        return run


def finish_and_compare(ref: Reference, cs: ChaosStage, run: Path, where: Path) -> list[str]:
    """Re-run the stage uninterrupted; the differences from the reference (empty when identical)."""
    run_cli(*command(run, cs.stages)[1:])
    return diff(tree_digest(run), ref.expected(cs))


def wait_for_markers(proc: subprocess.Popen, run_dir: Path, stages: tuple[str, ...], k: int) -> None:
    while proc.poll() is None and markers(run_dir, stages) < k:
        time.sleep(0.005)


def final_marker(run: Path, cs: ChaosStage) -> Path:
    """The file the last stage of `cs` writes when it ends (after it, the run has nothing left to do)."""
    last = cs.stages[-1]
    return run / last / ("audit.json" if last == "audit" else "stats.json")


def interrupt_trial(ref: Reference, cs: ChaosStage, sig: int, seed: int, where: Path, attempts: int = 6) -> dict:
    """Start the stage, send `sig` to its process group at a seeded random moment, re-run, compare.

    The moment is drawn in progress, not wall time, so it lands inside the work however loaded the
    machine is: after k of the reference's n task markers (k uniform in 0..n), plus a uniform extra
    delay of up to one task's share of the reference's wall time (all of it for a stage without
    markers, like the audit). The signal must land mid-run (the group still working, the last stage's
    final file not written, and the run not reporting success): when it did not, the trial starts
    again from a fresh copy with a new seeded moment (the extra delay halved each time), and after
    `attempts` tries it fails, so no trial passes having interrupted nothing.
    """
    rng = random.Random(seed)
    n = markers(ref.run_dir, cs.stages)
    share = ref.work_seconds(cs) / (n + 1)
    for attempt in range(attempts):
        k = rng.randint(0, n)
        extra = rng.uniform(0.0, share) / 2 ** attempt
        if attempt:
            shutil.rmtree(where / RUN_NAME)
        run = ref.seed_run(cs, where)
        before = invocations(run)
        proc = start(command(run, cs.stages), where / "interrupted.log")
        wait_for_work(proc, run, before)
        t0 = time.monotonic()
        wait_for_markers(proc, run, cs.stages, k)
        time.sleep(extra)
        finished_first = proc.poll() is not None or final_marker(run, cs).exists()
        kill_at = time.monotonic() - t0
        done_tasks = markers(run, cs.stages)
        stop_s = signal_group(proc, sig)
        rc = proc.returncode
        if not finished_first and rc != 0 and (sig != signal.SIGKILL or rc == -signal.SIGKILL):
            break
    else:
        raise AssertionError(f"{cs.name}: {signal.Signals(sig).name} never landed mid-run in {attempts} attempts "
                             f"(seed {seed}); the stage finishes before the drawn moments")
    differences = finish_and_compare(ref, cs, run, where)
    return {"stage": cs.name, "signal": signal.Signals(sig).name, "seed": seed, "attempt": attempt,
            "after_markers": k, "of_markers": n, "then_s": round(extra, 3), "signal_at_s": round(kill_at, 3),
            "finished_before_signal": False, "markers_at_signal": done_tasks,
            "exit_code": rc, "group_stopped_in_s": round(stop_s, 3),
            "identical": not differences, "differences": differences[:20], "dir": str(where)}
