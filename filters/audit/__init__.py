"""The audit report of a run: `python -m filters.audit RUN_DIR`, and the pipeline's last stage.

Writes RUN_DIR/audit/: report.html (self-contained), report.md (+ the plots as PNG files), audit.json
(the same numbers, machine-readable) and timing.json (the only wall-clock figure). Same run directory,
same bytes. See docs/contract.md, "Audit".
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from common.io import atomic_write_bytes, atomic_write_json, json_bytes

REPORT_FILES = ("report.html", "report.md", "audit.json")


class AuditFailed(RuntimeError):
    """A check failed (books, inputs, filter identity); raised after the report is written."""


def earlier_labeled(out: Path) -> tuple[str, str | None]:
    """(labeled set, why it cannot be used) of the evaluation an earlier audit in `out` made, so that
    re-running the audit (the pipeline's audit stage, say) keeps it instead of silently dropping it."""
    from common.io import read_json, sha256_file
    try:
        ev = read_json(out / "audit.json").get("evaluation") or {}
    except (OSError, ValueError, AttributeError):
        return "", None
    data = ev.get("data")
    if not data:
        return "", None
    if not Path(data).is_file():
        return data, "the file is no longer there"
    if sha256_file(data) != ev.get("sha256"):
        return data, "the file has changed since (its sha256 differs)"
    return data, None


def build_report(run_dir, cfg, labeled: str = "", sample: int = 20, keep_earlier: bool = True) -> dict:
    """Write the report files; returns the audit dict (audit.json's content). Without `labeled`, the labeled
    set an earlier audit of this run evaluated is evaluated again (`keep_earlier`), or the report says why not."""
    from filters.audit import collect, plots, render, sections
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    out = run_dir / "audit"
    out.mkdir(parents=True, exist_ok=True)
    earlier = None
    if not labeled and keep_earlier:
        data, why = earlier_labeled(out)
        if data and why is None:
            labeled = data
            print(f"note: evaluating {data} again, as the earlier audit of this run did (--no-labeled to drop it)",
                  file=sys.stderr)
        elif data:
            earlier = {"data": data, "why": why}
    audit = collect.collect(run_dir, cfg, labeled=labeled, sample=sample)
    if earlier:
        audit["earlier_evaluation"] = earlier
    images = plots.write_plots(audit, out)
    for stale in out.glob("*.png"):   # a plot of an earlier audit (e.g. with --labeled) must not linger
        if stale.name not in images.values():
            stale.unlink()
    audit["plots"] = images
    blocks = sections.blocks(audit)
    title = f"CBRN audit: {audit['run']}"
    pngs = {k: (out / v).read_bytes() for k, v in images.items()}
    atomic_write_bytes(out / "report.html", render.render_html(blocks, pngs, title).encode("utf-8"))
    atomic_write_bytes(out / "report.md", render.render_md(blocks, images).encode("utf-8"))
    atomic_write_bytes(out / "audit.json", json_bytes(audit, indent=True))
    atomic_write_json(out / "timing.json", {"wall_s": round(time.perf_counter() - t0, 3)})
    return audit


def run_audit_stage(run) -> dict:
    """The pipeline's `audit` stage: the report with the run's [cbrn] audit_* settings; fails the run
    (after writing the report) when a check fails."""
    cfg = run.config.cbrn
    audit = build_report(run.run_dir, cfg, labeled=cfg.audit_labeled, sample=cfg.audit_sample)
    report = run.stage_dir("audit") / "report.html"
    print(f"[audit] {report}: " + ("all checks pass" if audit["ok"] else f"{len(audit['problems'])} problem(s)"))
    if not audit["ok"]:
        raise AuditFailed(f"audit of {run.run_dir}: " + "; ".join(audit["problems"]))
    return {"report": str(report), "ok": True, "problems": []}
