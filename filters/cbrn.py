"""CBRN filter command line: `python -m filters.cbrn {classify,train,build-default,evaluate}`.

classify       one output line per input line, same order: {"id","decision","reason","score","terms"}
train          train + CV-calibrate + quantise a model from labeled JSONL files (never the dev set)
build-default  the shipped model (what `make cbrn-model` runs)
evaluate       recall / FPR / precision of the full policy on a labeled set, ROC/PR plot as PNG
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import orjson

from common import reasons
from common.io import atomic_write_json, iter_lines, json_bytes, sha256_file
from filters.config import CbrnConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_TRAIN = REPO.parent / "shared" / "data" / "cbrn_labeled" / "train.jsonl"
DEFAULT_OUT = REPO / "filters" / "models" / "cbrn_default.ftz"


# ------------------------------------------------------------------ classify
def _parse_line(lineno: int, raw: bytes):
    """(id, text, None) or (id, None, (reason, message))."""
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return str(lineno), None, (reasons.INVALID_JSON, f"line {lineno}: invalid JSON: {e}")
    if not isinstance(rec, dict):
        return str(lineno), None, (reasons.NOT_AN_OBJECT, f"line {lineno}: not a JSON object")
    rid = rec.get("id", lineno)
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        return str(lineno), None, (reasons.BAD_ID, f"line {lineno}: field 'id' must be a non-empty string or integer")
    if "text" not in rec:
        return str(rid), None, (reasons.MISSING_TEXT, f"line {lineno}: field 'text' missing")
    if not isinstance(rec["text"], str):
        return str(rid), None, (reasons.TEXT_NOT_STRING, f"line {lineno}: field 'text' is not a string")
    return str(rid), rec["text"], None


def classify(args) -> int:
    from filters.decide import CbrnFilter
    cfg = CbrnConfig(model_path=args.model or "", threshold=args.threshold,
                     threshold_without_terms=args.threshold_without_terms)
    filt = CbrnFilter.from_config(cfg)
    out_path = Path(args.output)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with open(tmp, "wb") as out:
            pending: list = []

            def flush():
                texts = [p[1] for p in pending if p[2] is None]
                decided = iter(filt.decide_batch(texts))
                for rid, text, err in pending:
                    if err is not None:
                        rec = {"id": rid, "decision": "error", "reason": err[0], "score": None, "terms": [],
                               "error": err[1]}
                    else:
                        d = next(decided)
                        rec = {"id": rid, "decision": d.decision, "reason": d.reason, "score": d.score,
                               "terms": d.terms}
                        if d.decision == "error":
                            rec["error"] = d.detail.get("error", "")
                        if args.detail:
                            rec["threshold"] = d.threshold
                            rec["detail"] = d.detail
                    out.write(orjson.dumps(rec) + b"\n")
                pending.clear()

            try:
                for lineno, raw in iter_lines(args.input):
                    pending.append(_parse_line(lineno, raw))
                    n += 1
                    if len(pending) >= cfg.batch_size:
                        flush()
            except Exception as e:  # unreadable or truncated input: what was read is classified, then report
                flush()
                print(f"error: {args.input}: {type(e).__name__}: {e}", file=sys.stderr)
                return 2
            flush()
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"classified {n} lines -> {out_path}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------ train
def train(data: list[str], out: str | Path, use_extra: bool, target_recall: float, folds: int,
          params: dict | None = None, strong_target_recall: float = 0.99) -> dict:
    from filters.classifier import DEFAULT_PARAMS, SEED, cross_val_scores, threshold_for_recall, train_to_file
    from filters.data import EXTRA_FILES, DATA_DIR, read_extra
    from filters.evaluate import read_labeled
    from filters.lexicon import load_lexicon
    from filters.match import Matcher

    rows, sources = [], []
    for p in data:
        if Path(p).name == "dev.jsonl":
            raise SystemExit(f"refusing to train on {p}: the dev split is the evaluation set")
        r = read_labeled(p)
        rows += r
        sources.append({"path": os.path.relpath(p, REPO), "sha256": sha256_file(p), "rows": len(r)})
    if use_extra:
        for name in EXTRA_FILES:
            r = read_extra([name])
            rows += r
            sources.append({"path": os.path.relpath(DATA_DIR / name, REPO), "sha256": sha256_file(DATA_DIR / name),
                            "rows": len(r)})
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    p = dict(DEFAULT_PARAMS, **(params or {}))
    cfg = CbrnConfig()
    lex = load_lexicon()
    matcher = Matcher(lex, cfg.context_window)
    counted = [len({m.entry for m in ms if not lex.entries[m.entry].dual_use_common})
               for ms in matcher.scan_batch(texts)]
    nterms = np.array(counted)
    escalated = nterms >= cfg.escalate_min_terms
    strong = nterms >= cfg.strong_min_terms
    oof = cross_val_scores(texts, labels, p, k=folds, chunk_words=cfg.chunk_words,
                           overlap_words=cfg.chunk_overlap_words)
    y = np.array(labels)
    # escalated documents: the threshold that keeps `target_recall` of their positives (out of fold);
    # with strong_min_terms or more terms, the one that keeps `strong_target_recall` (never higher than t1)
    one = escalated & ~strong
    ts = threshold_for_recall(oof[strong], y[strong], strong_target_recall)
    t1 = max(ts, threshold_for_recall(oof[one], y[one], target_recall))
    # the rest: the 99th percentile of out-of-fold scores of negatives without terms (~1% FPR there)
    neg0 = oof[(~escalated) & (y == 0)]
    t0 = max(t1, float(np.quantile(neg0, 0.99, method="higher"))) if len(neg0) else t1
    pred = np.where(strong, oof >= ts, np.where(escalated, oof >= t1, oof >= t0))
    cv = {"folds": folds, "target_recall": target_recall, "strong_target_recall": strong_target_recall,
          "recall": float((pred & (y == 1)).sum() / max(1, (y == 1).sum())),
          "fpr": float((pred & (y == 0)).sum() / max(1, (y == 0).sum())),
          "n": len(y), "positives": int((y == 1).sum()), "escalated": int(escalated.sum()), "strong": int(strong.sum())}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    train_to_file(texts, labels, tmp, p, SEED, quantize=True)
    os.replace(tmp, out)
    meta = {
        "model_file": out.name, "model_sha256": sha256_file(out), "model_bytes": out.stat().st_size,
        "quantized": True, "training_data": sources,
        "training_data_sha256": sha256_file_list([s["sha256"] for s in sources]),
        "params": p, "seed": SEED, "thread": 1,
        "threshold": round(t1, 6), "threshold_strong": round(ts, 6), "threshold_without_terms": round(t0, 6),
        "calibration": "k-fold CV on the training data only: threshold keeps target_recall of positives with "
                       "escalate_min_terms..strong_min_terms-1 terms, threshold_strong keeps strong_target_recall of "
                       "positives with strong_min_terms+ terms, threshold_without_terms is the 99th percentile of "
                       "no-term negatives' out-of-fold scores",
        "cv": cv, "lexicon_sha256": lex.sha256, "lexicon_version": lex.version,
        "escalate_min_terms": cfg.escalate_min_terms, "strong_min_terms": cfg.strong_min_terms,
    }
    atomic_write_json(out.with_suffix(".json"), meta)
    return meta


def sha256_file_list(digests: list[str]) -> str:
    from common.io import sha256_bytes
    return sha256_bytes("\n".join(digests).encode())


# ------------------------------------------------------------------ evaluate
def evaluate_cmd(args) -> int:
    from filters.decide import CbrnFilter
    from filters.evaluate import evaluate, write_plot
    filt = CbrnFilter.from_config(CbrnConfig(model_path=args.model or "", threshold=args.threshold))
    res = evaluate(filt, args.data)
    if args.plot:
        write_plot(res, args.plot)
    if args.json:
        atomic_write_json(args.json, {k: v for k, v in res.items()})
    print(f"n={res['n']} recall={res['recall']:.4f} fpr={res['fpr']:.4f} precision={res['precision']:.4f} "
          f"tp={res['tp']} fp={res['fp']} fn={res['fn']} tn={res['tn']} errors={res['errors']} "
          f"roc_auc(classifier)={res['curves']['classifier_score']['roc_auc']:.4f}")
    for f in res["false_negatives"]:
        print(f"  missed (line {f['line']}, score {f['score']}, terms {len(f['terms'])}): {f['note']}")
    for f in res["false_positives"]:
        print(f"  false positive (line {f['line']}, score {f['score']}, {f['reason']}): {f['note']}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m filters.cbrn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("classify", help="classify a JSONL file")
    c.add_argument("--input", required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--model", default=None, help="fastText model (default: the shipped model)")
    c.add_argument("--threshold", type=float, default=None, help="threshold for escalated documents")
    c.add_argument("--threshold-without-terms", type=float, default=None)
    c.add_argument("--detail", action="store_true", help="also write threshold and the ledger detail")
    t = sub.add_parser("train", help="train, calibrate and quantise a model")
    t.add_argument("--data", action="append", required=True, help="labeled JSONL {text,label}; repeatable")
    t.add_argument("--out", required=True)
    t.add_argument("--no-extra", action="store_true", help="leave out the repo's own labeled text")
    t.add_argument("--target-recall", type=float, default=0.97)
    t.add_argument("--folds", type=int, default=5)
    b = sub.add_parser("build-default", help="build the shipped model (make cbrn-model)")
    b.add_argument("--train", default=str(SHARED_TRAIN))
    b.add_argument("--out", default=str(DEFAULT_OUT))
    e = sub.add_parser("evaluate", help="evaluate the full policy on a labeled JSONL")
    e.add_argument("--data", required=True)
    e.add_argument("--model", default=None)
    e.add_argument("--threshold", type=float, default=None)
    e.add_argument("--plot", default=None, help="write ROC / PR curves to this PNG")
    e.add_argument("--json", default=None, help="write the full result as JSON")
    args = ap.parse_args(argv)
    if args.cmd == "classify":
        return classify(args)
    if args.cmd == "evaluate":
        return evaluate_cmd(args)
    if args.cmd == "train":
        meta = train(args.data, args.out, not args.no_extra, args.target_recall, args.folds)
    else:
        if not Path(args.train).is_file():
            print(f"error: training data not found: {args.train}", file=sys.stderr)
            return 2
        meta = train([args.train], args.out, True, 0.97, 5)
    sys.stdout.write(json_bytes({k: meta[k] for k in ("model_sha256", "model_bytes", "threshold",
                                                      "threshold_strong", "threshold_without_terms", "cv")}, indent=True).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
