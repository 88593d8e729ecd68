"""Progress bars on a terminal, silence in CI and logs."""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress_enabled() -> bool:
    if os.environ.get("CI") or os.environ.get("NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


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
