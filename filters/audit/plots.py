"""The report's plots, drawn from the numbers in audit.json only.

Deterministic bytes: Agg backend, matplotlib's default style (not the user's matplotlibrc), no
"Software" metadata (PNG has no date field otherwise). Labels from the run are escaped for math text.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from common.io import atomic_write_bytes  # noqa: E402

RC = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
TOP_TERMS = 20


def _label(s: str) -> str:
    """A run-supplied string as plain text ('$' would start math text)."""
    return str(s).replace("$", r"\$")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def funnel(acc: dict) -> bytes | None:
    """In, kept and taken out (removed + quarantined) per stage on a log scale, every bar labelled, so a
    stage that removes ten documents of a million still shows; the legend sits beside the plot."""
    rows = [(s, a["stats"]) for s, a in acc.items() if "stats" in a]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.4))
    x = range(len(rows))
    series = [("in", "in", "#9ab", -0.27), ("kept", "kept", "#2a6", 0.0),
              ("removed + quarantined", "out", "#c63", 0.27)]
    for label, key, color, dx in series:
        values = [r["in"] if key == "in" else r["kept"] if key == "kept"
                  else sum(r["removed"].values()) + sum(r["quarantined"].values()) for _, r in rows]
        ax.bar([i + dx for i in x], [max(v, 0.8) for v in values], 0.27, label=label, color=color)
        for i, v in enumerate(values):
            ax.annotate(f"{v:,}", (i + dx, max(v, 0.8)), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(0.8, max(r["in"] for _, r in rows) * 4)
    ax.set_xticks(list(x), [s for s, _ in rows])
    ax.set(ylabel="documents (log scale)", title="documents in, kept and taken out per stage")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def removals(acc: dict) -> bytes | None:
    bars = [(f"{s}: {r}", n, dec) for s, a in acc.items() if "stats" in a
            for dec in ("removed", "quarantined") for r, n in a["stats"][dec].items()]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.32 * len(bars)))
    colors = {"removed": "#c63", "quarantined": "#88a"}
    ax.barh(range(len(bars)), [b[1] for b in bars], color=[colors[b[2]] for b in bars])
    for i, b in enumerate(bars):
        ax.annotate(f" {b[1]:,} {b[2]}", (b[1], i), va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [_label(b[0]) for b in bars])
    ax.invert_yaxis()
    ax.set(xlabel="documents", title="removed and quarantined documents by stage and reason")
    ax.margins(x=0.25)
    return _png(fig)


def scores(cbrn: dict) -> bytes | None:
    sc = cbrn.get("scores") or {}
    edges = sc.get("bins") or []
    if len(edges) < 2:
        return None
    lefts, widths = edges[:-1], [b - a for a, b in zip(edges[:-1], edges[1:])]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, color in (("kept", "#2a6"), ("removed", "#c63")):
        counts = sc.get(name) or []
        if len(counts) == len(lefts):
            ax.bar(lefts, counts, widths, align="edge", alpha=0.55, color=color, label=f"{name} ({sum(counts):,})",
                   log=True)
    pol = (cbrn.get("filter") or {}).get("policy") or {}
    for key, style in (("threshold", "-"), ("threshold_strong", "--"), ("threshold_without_terms", ":")):
        if isinstance(pol.get(key), (int, float)):
            ax.axvline(pol[key], color="k", ls=style, lw=1, label=f"{key} {pol[key]:.3f}")
    ax.set(xlabel="classifier score (best chunk)", ylabel="documents (log)", title="CBRN classifier scores")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def levels(cbrn: dict) -> bytes | None:
    """Out-of-fold recall and FPR against the threshold (training data, from the model's metadata), for
    documents with one term and with strong evidence, with each policy level's threshold marked."""
    curve = (cbrn.get("calibration") or {}).get("curve") or {}
    th = ((cbrn.get("filter") or {}).get("policy") or {}).get("levels") or {}
    panels = [(k, title, key) for k, title, key in (("one_term", "one term", "threshold"),
                                                    ("strong", "strong evidence", "threshold_strong")) if curve.get(k)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(7, 3.2), squeeze=False)
    for ax, (k, title, key) in zip(axes[0], panels):
        pts = curve[k]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color="#c63", label="recall")
        ax.plot([p[0] for p in pts], [p[2] for p in pts], "-", color="#57a", label="FPR")
        for name, style in (("narrow", ":"), ("balanced", "-"), ("broad", "--")):
            if isinstance((th.get(name) or {}).get(key), (int, float)):
                ax.axvline(th[name][key], color="k", ls=style, lw=1, label=f"{name} {th[name][key]:.3f}")
        ax.set(xlabel="classifier score threshold", title=f"CV on training data: {title}", ylim=(-0.02, 1.02))
        ax.legend(frameon=False, fontsize=7)
    return _png(fig)


def counts_bar(counts: dict | None, title: str, color: str, xlabel: str = "removed documents") -> bytes | None:
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TERMS]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.28 * len(items)))
    ax.barh(range(len(items)), [v for _, v in items], color=color)
    ax.set_yticks(range(len(items)), [_label(k) for k, _ in items])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    return _png(fig)


def write_plots(audit: dict, out_dir: Path) -> dict[str, str]:
    """Write every plot that has data as `<name>.png` in out_dir; returns {name: file name}."""
    out: dict[str, str] = {}
    with plt.style.context("default"), matplotlib.rc_context(RC):
        cbrn = audit["cbrn"]
        figs = {"funnel": funnel(audit["stages"]), "removals": removals(audit["stages"]),
                "scores": scores(cbrn) if cbrn.get("present") else None,
                "levels": levels(cbrn) if cbrn.get("present") else None,
                "terms": counts_bar(cbrn.get("terms"), "top matched terms among removed documents", "#a54"),
                "lists": counts_bar(cbrn.get("lists"), "lists of the terms matched in removed documents", "#57a",
                                    "term matches"),
                "kept_terms": counts_bar(cbrn.get("kept_terms"), "terms matched in kept documents (hard negatives)",
                                         "#6a5", "kept documents")}
        for name, data in figs.items():
            if data is not None:
                atomic_write_bytes(out_dir / f"{name}.png", data)
                out[name] = f"{name}.png"
        if audit.get("evaluation"):
            from filters.evaluate import write_plot
            write_plot(audit["evaluation"], out_dir / "evaluation.png")
            out["evaluation"] = "evaluation.png"
    return out
