"""Evaluate the full decision policy on a labeled JSONL set ({"text", "label"[, "note"]}) and plot it.

Used by `python -m filters.cbrn evaluate` and, later, by the audit report.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson


class LabeledDataError(ValueError):
    pass


def read_labeled(path: str | Path) -> list[dict]:
    """Rows of a labeled JSONL file; errors name the file, the line and the field."""
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise LabeledDataError(f"{path}:{lineno}: invalid JSON: {e}") from None
            if not isinstance(rec, dict):
                raise LabeledDataError(f"{path}:{lineno}: expected an object")
            if not isinstance(rec.get("text"), str):
                raise LabeledDataError(f"{path}:{lineno}: field 'text' missing or not a string")
            if rec.get("label") not in (0, 1) or isinstance(rec.get("label"), bool):
                raise LabeledDataError(f"{path}:{lineno}: field 'label' must be 0 or 1, got {rec.get('label')!r}")
            rows.append({"text": rec["text"], "label": int(rec["label"]), "note": str(rec.get("note", "")),
                         "line": lineno})
    return rows


def confusion(pred: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of boolean predictions against 0/1 labels."""
    pred = np.asarray(pred, dtype=bool)
    return (int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum()),
            int((~pred & (y == 1)).sum()), int((~pred & (y == 0)).sum()))


def curves(scores: np.ndarray, labels: np.ndarray) -> dict:
    """ROC and PR points over every distinct score (score >= t means positive)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y == 1)
    fp = np.cumsum(y == 0)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    P, N = max(1, int((labels == 1).sum())), max(1, int((labels == 0).sum()))
    tpr, fpr = tp[last] / P, fp[last] / N
    prec = tp[last] / np.maximum(1, tp[last] + fp[last])
    auc = float(np.trapz(np.r_[0, tpr], np.r_[0, fpr])) if hasattr(np, "trapz") else float(np.trapezoid(np.r_[0, tpr], np.r_[0, fpr]))
    return {"thresholds": s[last].tolist(), "tpr": tpr.tolist(), "fpr": fpr.tolist(), "precision": prec.tolist(),
            "roc_auc": auc}


def evaluate(filt, labeled_jsonl: str | Path) -> dict:
    """Recall, FPR, precision of `filt` (a CbrnFilter) on a labeled set, with failures and curves.

    Curves use the policy margin: score / threshold that applied (>= 1 removes), blocklist removals at +inf.
    """
    rows = read_labeled(labeled_jsonl)
    decisions = filt.decide_batch([r["text"] for r in rows])
    y = np.array([r["label"] for r in rows])
    pred = np.array([d.decision == "remove" for d in decisions])
    errors = sum(d.decision == "error" for d in decisions)
    margin = np.array([np.inf if d.reason == "cbrn_blocklist" else
                       (d.score / d.threshold if d.score is not None and d.threshold else 0.0) for d in decisions])
    raw = np.array([d.score if d.score is not None else 0.0 for d in decisions])
    tp, fp, fn, tn = confusion(pred, y)
    fails = []
    for r, d, p in zip(rows, decisions, pred):
        if bool(p) != bool(r["label"]):
            fails.append({"line": r["line"], "label": r["label"], "decision": d.decision, "reason": d.reason,
                          "score": d.score, "threshold": d.threshold, "terms": d.terms, "note": r["note"][:160]})
    return {
        "data": str(labeled_jsonl), "n": len(rows), "positives": int((y == 1).sum()), "negatives": int((y == 0).sum()),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn, "errors": int(errors),
        "recall": tp / max(1, tp + fn), "fpr": fp / max(1, fp + tn), "precision": tp / max(1, tp + fp),
        "false_negatives": [f for f in fails if f["label"] == 1],
        "false_positives": [f for f in fails if f["label"] == 0],
        "curves": {"policy_margin": curves(np.nan_to_num(margin, posinf=1e9), y), "classifier_score": curves(raw, y)},
        "levels": level_table(filt, decisions, y),
        "fingerprint": filt.fingerprint(),
    }


def level_table(filt, decisions, y: np.ndarray) -> list[dict]:
    """Per policy level: its thresholds, its cross-validated recall/FPR on the training data (model
    metadata) and its recall/FPR/precision on this set (each decision records the levels that remove it)."""
    rows = []
    cv_levels = filt.meta.get("levels") or {}
    for name, lv in filt.levels.items():
        pred = np.array([name in (d.detail.get("levels") or {}) for d in decisions], dtype=bool)
        tp, fp, fn, tn = confusion(pred, y)
        cv = (cv_levels.get(name) or {}).get("cv") or {}
        rows.append({"level": name, "chosen": name == filt.level.name, "threshold": lv.threshold,
                     "threshold_strong": lv.threshold_strong, "threshold_without_terms": lv.threshold_without_terms,
                     "cv_recall": cv.get("recall"), "cv_fpr": cv.get("fpr"),
                     "recall": tp / max(1, tp + fn), "fpr": fp / max(1, fp + tn), "precision": tp / max(1, tp + fp),
                     "removed": int(pred.sum())})
    return rows


def write_plot(result: dict, png: str | Path) -> Path:
    """ROC and precision-recall of the classifier score, with the policy's operating point."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
    for name, style in (("classifier_score", "-"), ("policy_margin", "--")):
        c = result["curves"][name]
        a1.plot([0] + c["fpr"], [0] + c["tpr"], style, label=f"{name} (AUC {c['roc_auc']:.3f})")
        a2.plot(c["tpr"], c["precision"], style, label=name)
    a1.plot([result["fpr"]], [result["recall"]], "ro", label="policy decision")
    a2.plot([result["recall"]], [result["precision"]], "ro", label="policy decision")
    # log FPR: the operating point sits at a few percent or below, where a linear axis squeezes it against
    # the edge; linear below one negative's share, so an FPR of 0 is still drawn
    lin = 1.0 / max(1, result.get("negatives") or 1)
    a1.set_xscale("symlog", linthresh=lin, linscale=1.0)
    a1.set_xlim(-0.2 * lin, 1)
    ticks = [0.0] + [t for t in (0.001, 0.01, 0.05, 0.1, 0.3, 1.0) if t >= 2 * lin or t == 1.0]
    a1.set_xticks(ticks, [f"{t:g}" for t in ticks])
    a1.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    a1.set(xlabel=f"false positive rate (log scale; linear below 1/{result.get('negatives')})", ylabel="recall",
           title="ROC")
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"CBRN filter on {Path(result['data']).name}: recall {result['recall']:.3f}, FPR {result['fpr']:.3f}")
    fig.tight_layout()
    fig.savefig(png, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return png
