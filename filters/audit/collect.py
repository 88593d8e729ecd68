"""Gather the report's numbers from the run's ledgers and stats files; nothing is rescored here.

The one exception is the optional labeled-set evaluation (`evaluation`), which runs the run's filter.
Every check that fails adds a line to `problems`: the report shows them first and the CLI exits 1.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from common import reasons
from common.io import read_json, sha256_file
from filters.audit.snippets import clip, clip_text
from pipeline.ledger import Books, books_from_ledger, read_ledger
from pipeline.stages import data_stages

AUDIT_VERSION = 2  # 2: cbrn.levels and cbrn.calibration (policy levels)
REPO = Path(__file__).resolve().parents[2]
NOT_OUTPUTS = {"logs", "_tasks", "work"}   # wall clock, resume bookkeeping, intermediates
MAX_TERMS_SHOWN = 6                        # per document in the sample tables
MAX_CONTEXTS_SHOWN = 2                     # per term


# ---------------------------------------------------------------- accounting

def _books(d: dict) -> dict:
    """Books with zero counts dropped, so {} and {"x": 0} compare equal."""
    return {"in": d.get("in"), "kept": d.get("kept"),
            "removed": {k: v for k, v in sorted((d.get("removed") or {}).items()) if v},
            "quarantined": {k: v for k, v in sorted((d.get("quarantined") or {}).items()) if v}}


def fmt_books(b: dict) -> str:
    parts = [f"in {b['in']}", f"kept {b['kept']}"]
    parts += [f"{k} {v}" for k, v in {**b["removed"], **b["quarantined"]}.items()]
    return ", ".join(parts)


def stage_accounting(run_dir: Path, stage: str, problems: list[str], ledger=None) -> dict:
    d = run_dir / stage
    has_ledger = any((d / "ledger").glob("*.parquet"))
    stats_p = d / "stats.json"
    if not stats_p.is_file() and not has_ledger:
        return {"stage": stage, "status": "not run"}
    recount = _books(books_from_ledger(d, ledger).to_dict())
    out = {"stage": stage, "status": "complete" if stats_p.is_file() else "incomplete", "ledger": recount,
           "ledger_balanced": Books.from_dict(recount).balanced()}
    if not out["ledger_balanced"]:
        problems.append(f"{stage}: the ledger's own books do not balance: {fmt_books(recount)}")
    if not stats_p.is_file():
        problems.append(f"{stage}: no stats.json (the stage did not finish); ledger has {recount['in']} rows")
        return out
    st = read_json(stats_p)
    books = _books(st)
    out.update(stats=books, input_stage=st.get("input_stage"))
    if not isinstance(books["in"], int) or not isinstance(books["kept"], int):
        out["stats_balanced"] = out["ledger_matches_stats"] = False
        problems.append(f"{stage}: stats.json lacks integer 'in' / 'kept'")
        return out
    out["stats_balanced"] = Books.from_dict(books).balanced()
    out["ledger_matches_stats"] = books == recount
    if not out["stats_balanced"]:
        problems.append(f"{stage}: stats.json books do not balance: {fmt_books(books)}")
    if not out["ledger_matches_stats"]:
        problems.append(f"{stage}: BOOKS MISMATCH: the ledger recount ({fmt_books(recount)}) is not stats.json "
                        f"({fmt_books(books)})")
    return out


def check_flow(acc: dict, problems: list[str]) -> None:
    """A stage receives exactly what the stage it read from kept."""
    for stage, a in acc.items():
        src = a.get("input_stage")
        if not src or "stats" not in a:
            continue
        kept = acc.get(src, {}).get("stats", {}).get("kept")
        a["input_kept"] = kept
        a["flow_ok"] = kept == a["stats"]["in"]
        if not a["flow_ok"]:
            problems.append(f"{stage}: received {a['stats']['in']} documents but {src} kept {kept}")


# ---------------------------------------------------------------- by input file and by source

def origins(run_dir: Path, ledgers: dict | None = None) -> dict:
    """Documents read, dropped (per stage:reason) and left, per input file; drops per record source field.
    Read from ingest's task markers (documents read per input file) and the non-kept ledger rows of every
    data stage, whose detail names the file (`source` or, at ingest, `file`) and the record's source."""
    by_file: dict[str, dict] = {}
    by_source: dict[str, dict] = {}
    inputs_p = run_dir / "ingest" / "inputs.json"
    rels = [d.get("rel") for d in read_json(inputs_p)] if inputs_p.is_file() else []
    for p in sorted((run_dir / "ingest" / "_tasks" / "read").glob("*.json")):
        try:
            st = read_json(p)["stats"]
            rel = st.get("input") or rels[int(p.stem)]
            by_file.setdefault(str(rel), {"read": 0, "drops": {}})["read"] += int(st["books"]["in"])
        except (KeyError, IndexError, ValueError, TypeError, OSError, orjson.JSONDecodeError):
            continue
    import pyarrow.compute as pc
    for stage in data_stages():
        t = ledgers[stage] if ledgers is not None else read_ledger(run_dir / stage)
        if not t.num_rows:
            continue
        t = t.filter(pc.not_equal(t.column("decision"), reasons.KEPT))
        for reason, raw in zip(t.column("reason").to_pylist(), t.column("detail").to_pylist()):
            det = _detail(raw)
            key = f"{stage}: {reason}"
            f = clip_text(str(det.get("source") or det.get("file") or "—"), 80)
            d = by_file.setdefault(f, {"read": 0, "drops": {}})["drops"]
            d[key] = d.get(key, 0) + 1
            s = by_source.setdefault(clip_text(str(det.get("record_source") or "—"), 80), {})
            s[key] = s.get(key, 0) + 1
    for v in by_file.values():
        v["drops"] = dict(sorted(v["drops"].items()))
        v["left"] = v["read"] - sum(v["drops"].values())
    return {"by_file": dict(sorted(by_file.items())),
            "by_source": {k: dict(sorted(v.items())) for k, v in sorted(by_source.items())}}


# ---------------------------------------------------------------- cbrn

def _detail(raw: str) -> dict:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_unparseable": True}
    return d if isinstance(d, dict) else {}


def doc_row(doc_id: str, reason: str, detail: dict, removed: bool) -> dict:
    """One document as the report shows it: ids, score and matched terms with clipped context only."""
    terms = [t for t in detail.get("terms") or [] if isinstance(t, dict)]
    row = {"id": clip_text(doc_id, 120), "reason": reason, "score": detail.get("score"),
           "threshold": detail.get("threshold"), "n_terms": detail.get("n_terms"), "terms_total": len(terms),
           "terms": [{"term": clip_text(t.get("term", ""), 60), "count": t.get("count"),
                      "lists": [clip_text(x, 40) for x in t.get("lists") or []],
                      "context": [clip(c, [t.get("term", ""), *(t.get("aliases") or [])])
                                  for c in (t.get("context") or [])[:MAX_CONTEXTS_SHOWN]]}
                     for t in terms[:MAX_TERMS_SHOWN]]}
    if removed:
        row.update(sha256=detail.get("sha256"), source=clip_text(detail.get("source") or "", 80) or None,
                   line=detail.get("line"))
        w = detail.get("best_window")
        if isinstance(w, dict):   # a removal without a term: where the classifier was most sure, a few words
            row["best_window"] = {"score": w.get("score"), "words": w.get("words"),
                                  "starts": " ".join(str(w.get("starts") or "").split()[:8])[:80]}
    if detail.get("_unparseable"):
        row["note"] = "detail is not valid JSON"
    return row


def threshold_rule(row: dict, policy: dict) -> str:
    """Which of the policy's thresholds applied to a document, named by matching its recorded threshold
    against the run's policy (one term, strong evidence, no term; equal values name both)."""
    thr, names = row.get("threshold"), []
    for key, label in (("threshold", "one term"), ("threshold_strong", "strong evidence"),
                       ("threshold_without_terms", "no term")):
        if isinstance(thr, (int, float)) and policy.get(key) == thr:
            names.append(label)
    return " / ".join(names) or ("blocklist" if row.get("reason") == reasons.CBRN_BLOCKLIST else "—")


def _key(doc_id: str) -> str:
    return hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).hexdigest()


def _sample(rows: list[tuple[str, str, dict]], n: int) -> list[tuple[str, str, dict]]:
    """Up to n rows, spread over the reasons round-robin, each reason in sha256(id) order (a fixed
    pseudo-random draw: the same run gives the same sample, and no shard is favoured)."""
    by: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: _key(r[0])):
        by.setdefault(r[1], []).append(r)
    queues, out = [by[k] for k in sorted(by)], []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def _score(row: dict) -> float:
    s = row.get("score")
    return s if isinstance(s, (int, float)) else -1.0


def cbrn_section(run_dir: Path, sample_n: int, ledger=None) -> dict:
    d = run_dir / "cbrn"
    stats = read_json(d / "stats.json") if (d / "stats.json").is_file() else None
    if stats is None and not any((d / "ledger").glob("*.parquet")):
        return {"present": False}
    t = read_ledger(d) if ledger is None else ledger
    removed, hard, near, errors = [], [], [], []
    kept_with_terms = removed_no_terms = 0
    levels: dict[str, dict] = {}
    for doc_id, dec, reason, raw in zip(*(t.column(c).to_pylist() for c in ("id", "decision", "reason", "detail"))):
        if dec in (reasons.KEPT, reasons.REMOVED) and raw != "{}":
            det = _detail(raw)
            for name, why in (det.get("levels") or {}).items():
                lv = levels.setdefault(str(name), {"removed": 0, "by_reason": {}, "by_source": {}})
                lv["removed"] += 1
                lv["by_reason"][str(why)] = lv["by_reason"].get(str(why), 0) + 1
                src = clip_text(str(det.get("source") or "—"), 80)
                lv["by_source"][src] = lv["by_source"].get(src, 0) + 1
        if dec == reasons.KEPT:
            if raw == "{}":
                continue
            det = _detail(raw)
            if det.get("terms"):
                kept_with_terms += 1
                hard.append((doc_id, "", det))
            elif isinstance(det.get("score"), (int, float)) and isinstance(det.get("threshold"), (int, float)):
                near.append((doc_id, "", det))  # scored without a term: a near miss if close to its threshold
        elif dec == reasons.REMOVED:
            det = _detail(raw)
            removed_no_terms += not det.get("terms")
            removed.append((doc_id, reason, det))
        else:
            errors.append({"id": clip_text(doc_id, 120), "reason": reason,
                           "error": clip_text(_detail(raw).get("error", ""), 80)})
    policy = ((stats or {}).get("filter") or {}).get("policy") or {}
    sample = sorted(({**doc_row(i, r, det, True), "threshold_rule": threshold_rule({"reason": r, **det}, policy)}
                     for i, r, det in _sample(removed, sample_n)),
                    key=lambda x: (x["reason"], -_score(x), x["id"]))
    # hard negatives: the kept documents closest to removal first
    hard_rows = sorted((doc_row(i, r, det, False) for i, r, det in hard), key=lambda x: (-_score(x), x["id"]))
    # near misses: kept documents without a term, closest to their threshold first (score / threshold)
    near_rows = sorted(({**doc_row(i, r, det, False), "source": clip_text(str(det.get("source") or ""), 80) or None}
                        for i, r, det in near),
                       key=lambda x: (-(x["score"] / x["threshold"] if x["threshold"] else 0.0), x["id"]))
    st = stats or {}
    return {
        "present": True, "complete": stats is not None,
        "filter": st.get("filter"), "scores": st.get("scores"),
        "terms": st.get("terms"), "lists": st.get("lists"), "kept_terms": st.get("kept_terms"),
        "counts": {"removed": len(removed), "removed_without_terms": removed_no_terms,
                   "kept_with_terms": kept_with_terms, "errors": len(errors)},
        "levels": levels,
        "sample_rule": f"up to {sample_n} removed documents, reasons round-robin, each reason in sha256(id) order",
        "sample": sample,
        "hard_negatives": hard_rows[:sample_n],
        "near_misses": near_rows[:sample_n], "scored_kept_without_terms": len(near),
        "errors": errors[:sample_n],
    }


# ---------------------------------------------------------------- hashes

def _shown(p: Path) -> str:
    """Repo files by their repo-relative name, so two checkouts give the same report."""
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def _file_entry(p: Path, shown: str | None = None) -> dict:
    return {"path": shown or _shown(p), "sha256": sha256_file(p) if p.is_file() else None}


def digest(files: list[dict]) -> str:
    """Merkle-style digest of a file list: sha256 over sorted `path sha256` lines."""
    lines = "".join(f"{f['path']} {f['sha256']}\n" for f in sorted(files, key=lambda f: f["path"]))
    return hashlib.sha256(lines.encode()).hexdigest()


def tree_files(root: Path, base: Path) -> list[dict]:
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(base)
        parts = p.relative_to(root).parts
        if (p.is_file() and not NOT_OUTPUTS & set(parts[:-1]) and p.name != "timing.json"
                and not p.name.startswith(".")):
            out.append({"path": str(rel), "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return out


def hashes(run_dir: Path, cfg, cbrn: dict, problems: list[str]) -> dict:
    from filters.decide import DEFAULT_MODEL, metadata_path
    from filters.lexicon import DEFAULT_LEXICON
    lex_p = Path(cfg.lexicon_path) if cfg.lexicon_path else DEFAULT_LEXICON
    model_p = Path(cfg.model_path) if cfg.model_path else DEFAULT_MODEL
    out = {"config": _file_entry(run_dir / "config.json", "config.json"),
           "lexicon": _file_entry(lex_p), "model": _file_entry(model_p),
           "model_metadata": _file_entry(metadata_path(model_p))}
    rec = (cbrn.get("filter") or {}) if cbrn.get("present") else {}
    for name, key in (("lexicon", "lexicon_sha256"), ("model", "model_sha256")):
        if rec.get(key):
            out[name]["recorded"] = rec[key]
            if rec[key] != out[name]["sha256"]:
                problems.append(f"the {name} file {out[name]['path']} (sha256 {out[name]['sha256']}) is not the one "
                                f"the cbrn stage recorded ({rec[key]})")
    inputs = []
    inp_json = run_dir / "ingest" / "inputs.json"
    for i in read_json(inp_json) if inp_json.is_file() else []:
        p = Path(i["path"]) if Path(i["path"]).is_absolute() else run_dir / i["path"]
        if p.is_dir():   # an HF datasets directory: a digest of its files
            e = {"path": i["path"], "kind": i.get("kind"), "sha256": digest(tree_files(p, p))}
        else:
            e = {**_file_entry(p, i["path"]), "kind": i.get("kind")}
        if e["sha256"] is None:
            problems.append(f"input {i['path']} is missing: the run cannot be reproduced from it")
        inputs.append(e)
    out["inputs"] = inputs
    out["inputs_digest"] = digest(inputs) if inputs else None
    out["stages"] = {}
    for stage in data_stages():
        if (run_dir / stage).is_dir():
            files = tree_files(run_dir / stage, run_dir)
            out["stages"][stage] = {"files": len(files), "bytes": sum(f["bytes"] for f in files),
                                    "digest": digest(files), "file_list": files}
    return out


# ---------------------------------------------------------------- evaluation

def evaluation(cfg, labeled: str, cbrn: dict, problems: list[str]) -> dict:
    """Recall / FPR / precision of the run's filter (same config) on a labeled set."""
    from filters.decide import CbrnFilter
    from filters.evaluate import evaluate
    filt = CbrnFilter.from_config(cfg)
    res = evaluate(filt, labeled)
    recorded = (cbrn.get("filter") or {}) if cbrn.get("present") else {}
    same = not recorded or all(recorded.get(k) == res["fingerprint"].get(k)
                               for k in ("lexicon_sha256", "model_sha256", "policy_sha256"))
    if not same:
        problems.append("the evaluated filter's fingerprint differs from the one the cbrn stage recorded")
    fails = {k: [{**f, "note": clip_text(f.get("note", ""), 80)} for f in res[k]]
             for k in ("false_negatives", "false_positives")}
    keep = ("n", "positives", "negatives", "tp", "fp", "fn", "tn", "errors", "recall", "fpr", "precision", "curves",
            "fingerprint")
    return {"data": labeled, "sha256": sha256_file(labeled), "fingerprint_matches_run": same,
            **{k: res[k] for k in keep}, **fails}


def model_calibration(cfg, cbrn: dict) -> dict | None:
    """Each level's cross-validated recall/FPR and the out-of-fold curves its thresholds were read from,
    from the model's metadata, when that metadata belongs to the model the run used (same sha256)."""
    from filters.decide import DEFAULT_MODEL, metadata_path
    path = metadata_path(getattr(cfg, "model_path", "") or DEFAULT_MODEL)
    run_sha = (cbrn.get("filter") or {}).get("model_sha256")
    if not path.is_file() or not run_sha:
        return None
    meta = read_json(path)
    if meta.get("model_sha256") != run_sha or not meta.get("levels"):
        return None
    keep = ("target_recall", "strong_target_recall", "corpus_rate", "cv", "calib")
    return {"model_metadata": _shown(path), "folds": (meta.get("cv") or {}).get("folds"),
            "rule": meta.get("calibration"),
            "levels": {k: {x: v.get(x) for x in keep} for k, v in meta["levels"].items()},
            "curve": (meta.get("cv") or {}).get("curve")}


# ---------------------------------------------------------------- all of it

def collect(run_dir: Path, cfg, labeled: str = "", sample: int = 20) -> dict:
    run_dir = Path(run_dir)
    problems: list[str] = []
    ledgers = {s: read_ledger(run_dir / s) for s in data_stages()}   # each read once, used three ways
    acc = {s: stage_accounting(run_dir, s, problems, ledgers[s]) for s in data_stages()}
    check_flow(acc, problems)
    cbrn = cbrn_section(run_dir, sample, ledgers["cbrn"])
    if cbrn.get("present"):
        cbrn["calibration"] = model_calibration(cfg, cbrn)
    audit = {"audit_version": AUDIT_VERSION, "run": run_dir.resolve().name,
             "stages": acc, "origins": origins(run_dir, ledgers), "cbrn": cbrn, "hashes": hashes(run_dir, cfg, cbrn, problems),
             "evaluation": evaluation(cfg, labeled, cbrn, problems) if labeled else None}
    audit["problems"] = problems
    audit["ok"] = not problems
    return audit
