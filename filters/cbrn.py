"""CBRN filter command line: `python -m filters.cbrn {classify,train,build-default,evaluate}`.

classify       one output line per input line, same order: {"id","decision","reason","score","terms"};
               decision is the ledger's word: kept | removed (| error for a record that could not be read)
train          train + CV-calibrate + quantise a model from labeled JSONL files (never the dev set), optionally
               with real-corpus negatives and a no-term threshold calibrated on held-out corpus text
build-default  the shipped model (what `make cbrn-model` runs): train.jsonl + filters/data + ../shared/data/corpus
tune           compare fastText parameters by (nested) cross-validation on the training data, never dev
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
from filters.config import LEVELS, CbrnConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_TRAIN = REPO.parent / "shared" / "data" / "cbrn_labeled" / "train.jsonl"
SHARED_DEV = SHARED_TRAIN.with_name("dev.jsonl")
SHARED_CORPUS = REPO.parent / "shared" / "data" / "corpus"
DEFAULT_CORPUS_RATE = 0.00005  # balanced: the no-term path may remove at most this fraction of the held-out corpus
# per level: (recall kept among 1-term positives, among strong-evidence positives, no-term corpus rate (None:
# no removal without a term)), all out of fold on the training data; balanced's come from `train`'s arguments
LEVEL_TARGETS = {"narrow": (0.90, 0.95, None), "broad": (0.99, 0.995, 0.0005)}
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
                     threshold_without_terms=args.threshold_without_terms, policy=args.policy)
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
                        rec = {"id": rid, "decision": LEDGER_WORD.get(d.decision, d.decision), "reason": d.reason,
                               "score": d.score,
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
def training_set(data: list[str], use_extra: bool, corpus: str | Path | None = None,
                 negatives_per_source: dict | None = None) -> dict:
    """Labeled rows (train JSONL files + the repo's own text) and, with `corpus`, real-corpus negatives and the
    held-out calib split. {"texts", "labels", "n_labeled", "notes", "n_terms" (labeled rows), "calib",
    "sources", "corpus_meta", "n_terms_fn"}."""
    from filters.data import EXTRA_FILES, DATA_DIR, read_extra
    from filters.data.corpus import CORPUS_LABELS, iter_corpus, labeled_titles, read_corpus_labels, select_negatives
    from filters.decide import summarise, term_windows
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
    cfg = CbrnConfig()
    lex = load_lexicon()
    matcher = Matcher(lex, cfg.context_window)

    def escalated_terms(summaries: list[dict]) -> np.ndarray:
        """Per document: its distinct counted terms, 0 where the decision takes the no-term way (no term,
        or generic terms only without context)."""
        return np.array([s["n_terms"] if s["escalated"] else 0 for s in summaries], dtype=int)

    def n_terms(texts: list[str]) -> np.ndarray:
        return escalated_terms([summarise(t, ms, lex, cfg) for t, ms in zip(texts, matcher.scan_batch(texts))])

    negatives, calib, corpus_meta = [], [], None
    if corpus is not None:
        # leave out every labeled Wikipedia lead (dev ones above all) from the corpus negatives and calibration
        excl = labeled_titles(list(data) + [Path(p).with_name("dev.jsonl") for p in data] + [SHARED_DEV])
        records = list(iter_corpus(corpus, excl))
        negatives = select_negatives(records, lambda ts: [bool(m) for m in matcher.scan_batch(ts)],
                                     negatives_per_source)
        calib = [r for r in records if r["split"] == "calib"]
        by_source: dict[str, int] = {}
        for n in negatives:
            by_source[n["source"]] = by_source.get(n["source"], 0) + 1
        corpus_meta = {"path": os.path.relpath(corpus, REPO), "documents": len(records),
                       "excluded_labeled_titles": len(excl), "negatives": len(negatives),
                       "negatives_by_source": by_source,
                       "negatives_sha256": sha256_file_list([f"{n['id']}\t{n['text']}" for n in negatives]),
                       "calib_documents": len(calib)}
        sources.append({"path": corpus_meta["path"] + " (train split, no lexicon hit)", "rows": len(negatives),
                        "sha256": corpus_meta["negatives_sha256"]})
        if use_extra:  # real text with a term in passing, labeled by hand (filters/data/corpus_labels.tsv)
            labeled = [r for r in read_corpus_labels(records) if r["label"] == 0]
            rows += labeled
            sources.append({"path": os.path.relpath(CORPUS_LABELS, REPO), "sha256": sha256_file(CORPUS_LABELS),
                            "rows": len(labeled)})
            corpus_meta["hand_labeled"] = len(labeled)
    texts = [r["text"] for r in rows] + [n["text"] for n in negatives]
    matches = matcher.scan_batch(texts[:len(rows)])   # the labeled rows, scanned once for counts and windows
    summaries = [summarise(t, ms, lex, cfg) for t, ms in zip(texts, matches)]
    nterms = escalated_terms(summaries)
    # the term windows the decision scores for escalated documents (CV scores them too, so thresholds match)
    windows = [term_windows(t, ms, cfg.term_window_words, cfg.max_term_windows) if s["escalated"] else []
               for t, ms, s in zip(texts, matches, summaries)]
    return {"texts": texts, "labels": [r["label"] for r in rows] + [0] * len(negatives), "n_labeled": len(rows),
            "notes": [r["note"] for r in rows], "n_terms": nterms, "summaries": summaries, "windows": windows,
            "calib": calib,
            "sources": sources, "corpus_meta": corpus_meta, "n_terms_fn": n_terms}


def escalated_thresholds(oof: np.ndarray, y: np.ndarray, escalated: np.ndarray, strong: np.ndarray,
                         target_recall: float, strong_target_recall: float) -> tuple[float, float]:
    """(t1, ts): escalated documents keep `target_recall` of their positives (out of fold); those with
    strong evidence (strong_min_terms+ terms, a disguised name, hazard context), `strong_target_recall`
    (ts never higher than t1)."""
    from filters.classifier import threshold_for_recall
    one = escalated & ~strong
    ts = threshold_for_recall(oof[strong], y[strong], strong_target_recall)
    return max(ts, threshold_for_recall(oof[one], y[one], target_recall)), ts


def masks(summaries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(escalated, strong) of the labeled rows."""
    return (np.array([s["escalated"] for s in summaries], dtype=bool),
            np.array([s["strong"] for s in summaries], dtype=bool))


def level_predictions(level, summaries: list[dict], oof: np.ndarray, cfg: CbrnConfig) -> np.ndarray:
    """What `level` (a filters.decide.Level) removes of the labeled rows, given out-of-fold scores."""
    return np.array([bool(level.reason(s, float(o), cfg)) for s, o in zip(summaries, oof)], dtype=bool)


def rates(pred: np.ndarray, y: np.ndarray) -> dict:
    from filters.evaluate import confusion
    tp, fp, fn, tn = confusion(pred, y)
    return {"recall": round(tp / max(1, tp + fn), 4), "fpr": round(fp / max(1, fp + tn), 4), "tp": tp, "fp": fp,
            "fn": fn, "tn": tn}


def cv_curve(oof: np.ndarray, y: np.ndarray, points: int = 40) -> list[list[float]]:
    """[threshold, recall, fpr] at up to `points` thresholds of the out-of-fold ROC (what a level's
    threshold is read from), for the evaluate table and the audit plot."""
    from filters.evaluate import curves
    c = curves(oof, y)
    idx = np.unique(np.linspace(0, len(c["thresholds"]) - 1, min(points, len(c["thresholds"]))).round().astype(int))
    return [[round(c["thresholds"][i], 6), round(c["tpr"][i], 4), round(c["fpr"][i], 4)] for i in idx]


def labeled_no_term_floor(oof: np.ndarray, y: np.ndarray, escalated: np.ndarray, t1: float) -> float:
    """At least t1, and at least the 99th percentile of out-of-fold scores of labeled negatives without terms."""
    neg0 = oof[(~escalated) & (y == 0)]
    return max(t1, float(np.quantile(neg0, 0.99, method="higher"))) if len(neg0) else t1


def no_term_scores(model_path: str | Path, calib: list[dict], n_terms_fn, cfg: CbrnConfig) -> np.ndarray:
    """Scores of the calib documents the no-term path scores (min_words_without_terms+ words, no term)."""
    from filters.classifier import Classifier
    words = np.array([len(r["text"].split()) for r in calib])
    eligible = np.flatnonzero(words >= cfg.min_words_without_terms)
    eligible = eligible[n_terms_fn([calib[i]["text"] for i in eligible]) < cfg.escalate_min_terms]
    clf = Classifier(str(model_path), cfg.chunk_words, cfg.chunk_overlap_words)
    return np.array([float(c.max()) for c in clf.chunk_scores_batch([calib[i]["text"] for i in eligible])])


def no_term_calibration(model_path: str | Path, calib: list[dict], n_terms_fn, corpus_rate: float,
                        cfg: CbrnConfig) -> tuple[float, np.ndarray]:
    """(threshold, scores): the no-term threshold above which at most `corpus_rate` of the calib documents
    are removed on the no-term path, and the scores of the documents that path scores."""
    sc = no_term_scores(model_path, calib, n_terms_fn, cfg)
    return rate_threshold(sc, int(np.floor(corpus_rate * len(calib)))), sc


def train(data: list[str], out: str | Path, use_extra: bool, target_recall: float, folds: int,
          params: dict | None = None, strong_target_recall: float = 0.99, corpus: str | Path | None = None,
          corpus_rate: float = DEFAULT_CORPUS_RATE, negatives_per_source: dict | None = None) -> dict:
    """Train, CV-calibrate and quantise a model; thresholds for every policy level.

    With `corpus` (the shared real corpus): a seeded sample of its `train` split with no lexicon hit joins the
    training data as negatives (what ordinary text looks like), and each level's no-term threshold is set so
    that at most its rate of the held-out `calib` split is removed on the no-term path (filters.data.corpus).
    `target_recall`, `strong_target_recall` and `corpus_rate` are the balanced level's; the others' are
    LEVEL_TARGETS.
    """
    from filters.classifier import DEFAULT_PARAMS, SEED, cross_val_scores, train_to_file
    from filters.decide import LEVEL_TEXT, LEVELS, Level
    from filters.lexicon import load_lexicon

    cfg = CbrnConfig()
    ds = training_set(data, use_extra, corpus, negatives_per_source)
    texts, labels, n_lab, nterms = ds["texts"], ds["labels"], ds["n_labeled"], ds["n_terms"]
    sources, corpus_meta, calib, summaries = ds["sources"], ds["corpus_meta"], ds["calib"], ds["summaries"]
    lex = load_lexicon()
    p = dict(DEFAULT_PARAMS, **(params or {}))
    escalated, strong = masks(summaries)
    oof_all = cross_val_scores(texts, labels, p, k=folds, chunk_words=cfg.chunk_words,
                               overlap_words=cfg.chunk_overlap_words, windows=ds["windows"])
    oof = oof_all[:n_lab]
    y = np.array(labels[:n_lab])
    targets = dict(LEVEL_TARGETS, balanced=(target_recall, strong_target_recall, corpus_rate))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        train_to_file(texts, labels, tmp, p, SEED, quantize=True)
        calib_scores = no_term_scores(tmp, calib, ds["n_terms_fn"], cfg) if calib else None
        levels = {}
        for name in ("balanced", "narrow", "broad"):  # balanced first: the others nest around it
            tr, st, rate = targets[name]
            t1, ts = escalated_thresholds(oof, y, escalated, strong, tr, st)
            t0, calib_meta = None, None
            if rate is not None:
                # at least the 99th percentile of out-of-fold scores of labeled negatives without terms ...
                t0 = labeled_no_term_floor(oof, y, escalated, t1)
                if calib_scores is not None:
                    # ... and high enough that the no-term path removes at most `rate` of the held-out calib split
                    t_rate = rate_threshold(calib_scores, int(np.floor(rate * len(calib))))
                    t0 = max(t0, t_rate)
                    removed = int((calib_scores >= round(t0, 6)).sum())
                    calib_meta = {"documents": len(calib), "no_term_scored": int(len(calib_scores)),
                                  "target_rate": rate, "threshold_at_rate": round(t_rate, 6),
                                  "no_term_removed": removed, "no_term_removed_rate": round(removed / len(calib), 6)}
            if name != "balanced":  # levels nest: narrow removes a subset of balanced, broad a superset
                b = levels["balanced"]
                pick = max if name == "narrow" else min
                t1, ts = pick(t1, b["threshold"]), pick(ts, b["threshold_strong"])
                if t0 is not None and b["threshold_without_terms"] is not None:
                    t0 = pick(t0, b["threshold_without_terms"])
            lv = Level(name, round(t1, 6), round(ts, 6), None if t0 is None else round(t0, 6),
                       blocklist_mentions=(name == "broad"))
            levels[name] = {"what": LEVEL_TEXT[name], "threshold": lv.threshold, "threshold_strong": lv.threshold_strong,
                            "threshold_without_terms": lv.threshold_without_terms,
                            "blocklist_mentions": lv.blocklist_mentions, "target_recall": tr,
                            "strong_target_recall": st, "corpus_rate": rate,
                            "cv": rates(level_predictions(lv, summaries, oof, cfg), y), "calib": calib_meta}
        levels = {name: levels[name] for name in LEVELS}
        bal = levels["balanced"]
        if corpus_meta is not None and bal["calib"] is not None:
            corpus_meta["calibration"] = bal["calib"]
        cv = {"folds": folds, "target_recall": target_recall, "strong_target_recall": strong_target_recall,
              "recall": bal["cv"]["recall"], "fpr": bal["cv"]["fpr"],
              "n": int(n_lab), "positives": int((y == 1).sum()), "escalated": int(escalated.sum()),
              "strong": int(strong.sum()), "strong_terms": int((nterms >= cfg.strong_min_terms).sum()),
              "strong_evidence_only": int((strong & (nterms < cfg.strong_min_terms)).sum()),
              "corpus_negatives": len(texts) - n_lab,
              "corpus_negatives_oof_q99": round(float(np.quantile(oof_all[n_lab:], 0.99)), 6) if len(texts) > n_lab
              else None,
              "curve": {"one_term": cv_curve(oof[escalated & ~strong], y[escalated & ~strong]),
                        "strong": cv_curve(oof[strong], y[strong])}}
        meta = {
            "model_file": out.name, "model_sha256": sha256_file(tmp), "model_bytes": tmp.stat().st_size,
            "quantized": True, "training_data": sources,
            "training_data_sha256": sha256_file_list([s["sha256"] for s in sources]),
            "params": p, "seed": SEED, "thread": 1,
            "threshold": bal["threshold"], "threshold_strong": bal["threshold_strong"],
            "threshold_without_terms": bal["threshold_without_terms"], "levels": levels,
            "calibration": "k-fold CV on the training data only (out-of-fold max over chunks and, for escalated "
                           "documents, term windows), per level: threshold keeps target_recall of positives with a "
                           "term and no strong evidence, threshold_strong keeps strong_target_recall of positives "
                           "with strong evidence (strong_min_terms+ terms, a disguised name, hazard context); "
                           "threshold_without_terms is the larger of the 99th percentile of labeled no-term "
                           "negatives' out-of-fold scores and the score above which at most corpus_rate of the "
                           "held-out corpus calib split is removed on the no-term path (documents of "
                           "min_words_without_terms+ words); narrow has no no-term path",
            "cv": cv, "corpus": corpus_meta, "lexicon_sha256": lex.sha256, "lexicon_version": lex.version,
            "escalate_min_terms": cfg.escalate_min_terms, "strong_min_terms": cfg.strong_min_terms,
            "min_words_without_terms": cfg.min_words_without_terms,
        }
        atomic_write_json(out.with_suffix(".json"), meta)
        os.replace(tmp, out)
    finally:
        if tmp.exists():  # a failed build leaves nothing behind
            tmp.unlink()
    return meta


# ------------------------------------------------------------------ tune
TUNE_GRID = [{}, {"wordNgrams": 1}, {"minn": 0, "maxn": 0}, {"dim": 100}, {"epoch": 20}, {"epoch": 80, "lr": 0.3}]
TUNE_TARGETS = ((0.97, 0.99), (0.99, 0.99), (0.99, 1.0))


def tune(data: list[str], use_extra: bool, corpus: str | Path | None, grid: list[dict], folds: int = 5,
         corpus_rate: float = DEFAULT_CORPUS_RATE, targets=TUNE_TARGETS) -> list[dict]:
    """Compare fastText parameters on the TRAINING data only (never dev): out-of-fold ROC AUC, and for each
    (target_recall, strong_target_recall) the nested-CV recall / false positives of the escalated paths (the
    thresholds of each fold come from the other folds' out-of-fold scores); with `corpus`, what the policy of
    a model trained on everything removes from the held-out calib split."""
    import tempfile

    from filters.classifier import DEFAULT_PARAMS, SEED, cross_val_scores, fold_of, train_to_file
    from filters.decide import CbrnFilter
    from filters.evaluate import curves

    cfg = CbrnConfig()
    ds = training_set(data, use_extra, corpus)
    texts, labels, n_lab = ds["texts"], ds["labels"], ds["n_labeled"]
    y = np.array(labels[:n_lab])
    esc, strong = masks(ds["summaries"])
    fold = np.array([fold_of(t, folds) for t in texts[:n_lab]])
    words = np.array([len(t.split()) for t in texts[:n_lab]])
    rows = []
    for params in grid:
        p = dict(DEFAULT_PARAMS, **params)
        oof = cross_val_scores(texts, labels, p, k=folds, chunk_words=cfg.chunk_words,
                               overlap_words=cfg.chunk_overlap_words, windows=ds["windows"])[:n_lab]
        row = {"params": params, "auc": round(curves(oof, y)["roc_auc"], 4),
               "auc_escalated": round(curves(oof[esc], y[esc])["roc_auc"], 4)}
        for tr, st in targets:
            pred = np.zeros(n_lab, dtype=bool)
            for f in range(folds):
                o = fold != f
                t1, ts = escalated_thresholds(oof[o], y[o], esc[o], strong[o], tr, st)
                i = fold == f
                pred[i] = np.where(strong[i], oof[i] >= ts, esc[i] & (oof[i] >= t1))
            row[f"nested_{tr}_{st}"] = {"recall_escalated": round(float((pred & y.astype(bool)).sum() /
                                                                        max(1, (esc & (y == 1)).sum())), 4),
                                        "fp": int((pred & (y == 0)).sum())}
        if ds["calib"]:
            t1, ts = escalated_thresholds(oof, y, esc, strong, targets[0][0], targets[0][1])
            with tempfile.TemporaryDirectory() as d:
                m = Path(d) / "m.ftz"
                train_to_file(texts, labels, m, p, SEED, quantize=True)
                t_rate, _ = no_term_calibration(m, ds["calib"], ds["n_terms_fn"], corpus_rate, cfg)
                t0 = max(labeled_no_term_floor(oof, y, esc, t1), t_rate)
                filt = CbrnFilter(CbrnConfig(model_path=str(m), threshold=t1, threshold_strong=ts,
                                             threshold_without_terms=t0))
                dec = filt.decide_batch([r["text"] for r in ds["calib"]])
                row["model_bytes"] = m.stat().st_size
            rm = [d for d in dec if d.decision == "remove"]
            row["calib"] = {"t1": round(t1, 4), "ts": round(ts, 4), "t0": round(t0, 4), "docs": len(dec),
                            "removed": len(rm), "removed_no_term": sum(not d.detail["escalated"] for d in rm)}
            lp = ~esc & (y == 1) & (words >= cfg.min_words_without_terms)
            row["labeled_no_term_positives_over_t0"] = f"{int((oof[lp] >= t0).sum())}/{int(lp.sum())}"
        print(json_bytes(row).decode().strip(), flush=True)
        rows.append(row)
    return rows


def rate_threshold(scores: np.ndarray, max_removed: int) -> float:
    """The smallest 6-decimal threshold t with at most `max_removed` of `scores` >= t."""
    s = np.sort(np.asarray(scores, dtype=float))[::-1]
    if max_removed >= len(s):
        return 0.0
    v = float(s[max_removed])  # the first score that must stay below t
    return round(float(np.floor(v * 1e6 + 1e-6)) / 1e6 + 1e-6, 6)


def sha256_file_list(digests: list[str]) -> str:
    from common.io import sha256_bytes
    return sha256_bytes("\n".join(digests).encode())


# ------------------------------------------------------------------ evaluate
def evaluate_cmd(args) -> int:
    from filters.decide import CbrnFilter
    from filters.evaluate import evaluate, write_plot
    from common.progress import print_table
    filt = CbrnFilter.from_config(CbrnConfig(model_path=args.model or "", threshold=args.threshold,
                                             policy=args.policy))
    res = evaluate(filt, args.data)
    if args.plot:
        write_plot(res, args.plot)
    if args.json:
        atomic_write_json(args.json, {k: v for k, v in res.items()})
    print(f"n={res['n']} recall={res['recall']:.4f} fpr={res['fpr']:.4f} precision={res['precision']:.4f} "
          f"tp={res['tp']} fp={res['fp']} fn={res['fn']} tn={res['tn']} errors={res['errors']} "
          f"roc_auc(classifier)={res['curves']['classifier_score']['roc_auc']:.4f}")
    def num(v, fmt=".4f"):
        return "-" if v is None else format(v, fmt)
    print(f"policy levels (cross-validated on the training data; measured on {Path(args.data).name}):")
    print_table([{"level": r["level"] + (" *" if r["chosen"] else ""), "threshold": num(r["threshold"]),
                  "strong": num(r["threshold_strong"]), "no-term": num(r["threshold_without_terms"]),
                  "CV recall": num(r["cv_recall"]), "CV FPR": num(r["cv_fpr"]), "recall": num(r["recall"]),
                  "FPR": num(r["fpr"]), "precision": num(r["precision"]), "removed": r["removed"]}
                 for r in res["levels"]])
    print(f"missed and false positives below are for the chosen level ({filt.level.name}):")
    for f in res["false_negatives"]:
        print(f"  missed (line {f['line']}, score {f['score']}, terms {len(f['terms'])}): {f['note']}")
    for f in res["false_positives"]:
        print(f"  false positive (line {f['line']}, score {f['score']}, {f['reason']}): {f['note']}")
    return 0


LEDGER_WORD = {"keep": "kept", "remove": "removed"}  # what the ledger and the report say


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
    c.add_argument("--policy", default="balanced", choices=LEVELS,
                   help="policy level (filters.decide.LEVEL_TEXT)")
    c.add_argument("--detail", action="store_true", help="also write threshold and the ledger detail")
    t = sub.add_parser("train", help="train, calibrate and quantise a model")
    t.add_argument("--labeled", "--data", dest="data", action="append", required=True,
                   help="labeled JSONL {text,label}; repeatable (--data: the older name)")
    t.add_argument("--out", required=True)
    t.add_argument("--no-extra", action="store_true", help="leave out the repo's own labeled text")
    t.add_argument("--target-recall", type=float, default=0.97)
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--corpus", default=None, help="real corpus dir: negatives from its train split, no-term "
                                                   "threshold calibrated on its calib split (default: none)")
    t.add_argument("--corpus-rate", type=float, default=DEFAULT_CORPUS_RATE)
    b = sub.add_parser("build-default", help="build the shipped model (make cbrn-model)")
    b.add_argument("--train", default=str(SHARED_TRAIN))
    b.add_argument("--corpus", default=str(SHARED_CORPUS))
    b.add_argument("--out", default=str(DEFAULT_OUT))
    u = sub.add_parser("tune", help="compare fastText parameters by cross-validation on the training data")
    u.add_argument("--train", default=str(SHARED_TRAIN))
    u.add_argument("--corpus", default=str(SHARED_CORPUS), help="'' for none")
    u.add_argument("--params", action="append", default=None, help="JSON parameter overrides; repeatable "
                                                                    "(default: a small built-in grid)")
    e = sub.add_parser("evaluate", help="evaluate the full policy on a labeled JSONL")
    e.add_argument("--labeled", "--data", dest="data", required=True,
                   help="labeled JSONL {text,label} (--data: the older name)")
    e.add_argument("--model", default=None)
    e.add_argument("--threshold", type=float, default=None)
    e.add_argument("--policy", default="balanced", choices=LEVELS)
    e.add_argument("--plot", default=None, help="write ROC / PR curves to this PNG")
    e.add_argument("--json", default=None, help="write the full result as JSON")
    args = ap.parse_args(argv)
    if args.cmd == "classify":
        return classify(args)
    if args.cmd == "evaluate":
        return evaluate_cmd(args)
    if args.cmd == "tune":
        grid = [orjson.loads(x) for x in args.params] if args.params else TUNE_GRID
        tune([args.train], True, args.corpus or None, grid)
        return 0
    if args.cmd == "train":
        meta = train(args.data, args.out, not args.no_extra, args.target_recall, args.folds, corpus=args.corpus,
                     corpus_rate=args.corpus_rate)
    else:
        for what, path in (("training data", Path(args.train)), ("corpus", Path(args.corpus) / "STATS.json")):
            if not path.exists():
                print(f"error: {what} not found: {path}", file=sys.stderr)
                return 2
        meta = train([args.train], args.out, True, 0.97, 5, corpus=args.corpus)
    sys.stdout.write(json_bytes({k: meta[k] for k in ("model_sha256", "model_bytes", "threshold",
                                                      "threshold_strong", "threshold_without_terms", "cv")}, indent=True).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
