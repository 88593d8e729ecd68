"""Progress: a bar on a terminal, a line every `PROGRESS_INTERVAL_S` seconds (default 30) in a pipe or
a SLURM log, nothing under NO_PROGRESS=1; and tables.

Document counts cross process boundaries through one shared counter: the process that shows progress
creates it (`new_doc_counter`), worker processes attach it (`attach_doc_counter`, a pool initializer)
and code that handles documents calls `tick(n)`, which batches so that a document costs no lock."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time

from tqdm import tqdm


def progress_enabled() -> bool:
    """A live bar: only on a terminal, never in CI."""
    if os.environ.get("CI") or os.environ.get("NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


def progress_lines_enabled() -> bool:
    """Periodic lines: whenever there is no bar, unless NO_PROGRESS is set."""
    return not os.environ.get("NO_PROGRESS") and not progress_enabled()


def line_interval_s() -> float:
    try:
        return max(0.05, float(os.environ.get("PROGRESS_INTERVAL_S", "30")))
    except ValueError:
        return 30.0


# ---------------------------------------------------------------- documents done, across processes

_counter = None          # a multiprocessing Value('q') shared by the workers of one run, or None
_pending = 0             # ticks not yet added to it (flushed every _FLUSH ticks and at task end)
_FLUSH = 512


def new_doc_counter():
    """A counter this process reads and spawned workers can attach (pass it in a pool's initargs)."""
    global _counter
    _counter = mp.get_context("spawn").Value("q", 0)
    return _counter


def attach_doc_counter(counter) -> None:
    global _counter
    _counter = counter


def tick(n: int = 1) -> None:
    """`n` more documents handled (by this process, for whoever shows progress)."""
    global _pending
    if _counter is None:
        return
    _pending += n
    if _pending >= _FLUSH:
        flush_ticks()


def flush_ticks() -> None:
    global _pending
    if _counter is not None and _pending:
        with _counter.get_lock():
            _counter.value += _pending
        _pending = 0


def docs_done() -> int:
    return _counter.value if _counter is not None else 0


class DocProgress:
    """Documents done in one step, shown while it runs: a tqdm bar on a terminal, else a line every
    `line_interval_s()` on stderr ("docs done, docs/s, ETA" when the step's total is known). Reads the
    shared counter from a thread, so workers pay nothing but `tick`. A context manager."""

    def __init__(self, desc: str, total_docs: int | None = None, tasks: int | None = None):
        self.desc, self.total, self.tasks = desc, total_docs, tasks
        self.tasks_done = 0
        self._bar = bar(total=total_docs, desc=desc, unit="doc") if progress_enabled() else None
        self._lines = progress_lines_enabled()
        self._stop = threading.Event()
        self._thread = None
        self._printed = False

    def __enter__(self):
        if _counter is None:
            new_doc_counter()
        self._start_count = docs_done()
        self._t0 = time.monotonic()
        if self._bar is not None or self._lines:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def task_done(self) -> None:
        self.tasks_done += 1

    def done(self) -> int:
        # no flush here: the reporting thread calls this, and ticks of this process are flushed by the
        # thread that made them (every 512, at each task's end, on exit)
        return docs_done() - self._start_count

    def _loop(self) -> None:
        interval = 0.5 if self._bar is not None else line_interval_s()
        while not self._stop.wait(interval):
            if self._bar is not None:
                self._bar.n = self.done()
                self._bar.refresh()
            else:
                print(self.line(), file=sys.stderr, flush=True)
                self._printed = True

    def line(self) -> str:
        done, wall = self.done(), time.monotonic() - self._t0
        rate = done / wall if wall > 0 else 0.0
        parts = [f"{self.tasks_done}/{self.tasks} tasks"] if self.tasks else []
        if self.total:
            parts.append(f"{done:,}/{self.total:,} docs ({100 * done / self.total:.0f}%)")
        if done or self.total:
            parts.append(f"{rate:,.0f} docs/s")
        left = None    # seconds: from documents when the total is known, else from finished tasks
        if self.total and rate > 0:
            left = max(0, self.total - done) / rate
        elif not self.total and self.tasks and self.tasks_done:
            left = wall * (self.tasks - self.tasks_done) / self.tasks_done
        if self.total or self.tasks:
            parts.append("ETA " + (f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
                                   if left is not None else "unknown"))
        if not self.total and done:
            parts.insert(1 if self.tasks else 0, f"{done:,} docs")
        return f"[progress] {self.desc}: " + ", ".join(parts)

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        flush_ticks()
        if self._printed and exc[0] is None:   # a log that saw the step going also sees it end
            print(self.line() + " (done)", file=sys.stderr, flush=True)
        if self._bar is not None:
            self._bar.close()
        return False


def bar(total: int | None = None, desc: str = "", unit: str = "it", **kw) -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(),
                dynamic_ncols=True, leave=False, **kw)


def print_table(rows: list[dict], title: str | None = None, file=None) -> str:
    """A plain-text table (first row's keys are the columns); returned and printed."""
    file = file or sys.stdout
    if not rows:
        return ""
    cols = list(rows[0].keys())
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    def fmt(vals):
        return "  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    lines = []
    if title:
        lines.append(title)
    lines.append(fmt(cols))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in cells)
    text = "\n".join(lines)
    print(text, file=file, flush=True)
    return text


def _numeric(s: str) -> bool:
    try:
        float(s.replace(",", ""))
        return True
    except ValueError:
        return False
