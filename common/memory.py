"""This process's memory from /proc (Linux; elsewhere None and no-ops): a field of /proc/self/status, a
reset of its resident high-water mark (VmHWM), and the peak of its anonymous resident memory sampled
while something runs (the high-water mark also counts pages of files the process maps and reads: page
cache the kernel can drop, not memory the work needs)."""
from __future__ import annotations

import os
import threading

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def status_bytes(key: str) -> int | None:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM, ...) in bytes; None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Start a new resident high-water mark (VmHWM) for this process."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class AnonPeak:
    """Peak anonymous resident memory (resident minus file-backed and shared pages, /proc/self/statm) in MB
    while the `with` block runs, sampled every `interval_s`; None where /proc is not there."""

    def __init__(self, interval_s: float = 0.02):
        self.interval_s = interval_s
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            with open("/proc/self/statm") as f:
                fields = f.read().split()
        except OSError:
            return
        mb = (int(fields[1]) - int(fields[2])) * PAGE_BYTES / 2**20
        self.peak_mb = round(max(self.peak_mb or 0.0, mb), 1)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> "AnonPeak":
        self._sample()
        if self.peak_mb is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._sample()
