"""The report's content as a list of blocks, rendered twice (HTML and Markdown) from one definition.

Blocks: ("h", level, text) | ("p", text) | ("bad", [lines]) | ("ok", text) | ("table", header, rows)
| ("img", name, alt) | ("details", summary, [blocks]). Cells are strings, or Snips (document context,
rendered as code with the match highlighted). Escaping happens in render.py, never here.
"""
from __future__ import annotations

from filters.audit.snippets import SNIPPET_WORDS
from pipeline.stages import data_stages


class Snip(str):
    """Context from a document (already clipped by snippets.clip)."""


class Bad(str):
    """A failed check: shown in red / bold."""


def n(v) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else ("—" if v is None else str(v))


def f(v, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"


def by_reason(d: dict) -> str:
    return ", ".join(f"{r} {n(c)}" for r, c in d.items()) or "0"


def _terms_cell(row: dict) -> list:
    out = []
    for t in row["terms"]:
        lists = f" [{', '.join(t['lists'])}]" if t["lists"] else ""
        out.append(f"{t['term']} ×{n(t['count'])}{lists}")
        out.extend(Snip(c) for c in t["context"])
    if row["terms_total"] > len(row["terms"]):
        out.append(f"… {row['terms_total'] - len(row['terms'])} more terms")
    w = row.get("best_window")
    if w and not out:
        out.append(f"(no lexicon term) highest-scoring window: words {w['words'][0]}–{w['words'][1]}, "
                   f"score {f(w['score'])}, starting")
        out.append(Snip(f"{w['starts']} …"))
    return out or ["(no lexicon term; classifier score only)"]


# ---------------------------------------------------------------- sections

def accounting(audit: dict) -> list:
    rows = []
    for s, a in audit["stages"].items():
        if a["status"] == "not run":
            rows.append([s, "not run (no stats.json, no ledger)"] + [""] * 7)
            continue
        st, led = a.get("stats"), a["ledger"]
        src = a.get("input_stage")
        flow = "—" if not src else (f"{src} kept {n(a.get('input_kept'))}: ok" if a.get("flow_ok") else
                                    Bad(f"MISMATCH: {src} kept {n(a.get('input_kept'))}"))
        recount = (f"{n(led['in'])} rows, equal" if a.get("ledger_matches_stats") else
                   Bad(f"MISMATCH: {n(led['in'])} rows: in {n(led['in'])}, kept {n(led['kept'])}, removed "
                       f"{by_reason(led['removed'])}, quarantined {by_reason(led['quarantined'])}") if st else
                   Bad(f"{n(led['in'])} rows (no stats.json)"))
        balance = "ok" if a["ledger_balanced"] and (a.get("stats_balanced") or not st) else Bad("DOES NOT BALANCE")
        b = st or led
        status = a["status"] if a["status"] == "complete" else Bad(a["status"])
        rows.append([s, status, n(b["in"]), n(b["kept"]), by_reason(b["removed"]), by_reason(b["quarantined"]),
                     recount, balance, flow])
    return [
        ("h", 2, "1. Accounting"),
        ("p", "Per stage, from its stats.json; the ledger column recounts every row of the stage's ledger "
              "(books_from_ledger) and must equal stats.json exactly. Books balance: in = kept + removed + "
              "quarantined. Input: a stage receives exactly what the stage it read from kept."),
        ("table", ["stage", "status", "in", "kept", "removed", "quarantined", "ledger recount", "books balance",
                   "input"], rows),
        ("img", "funnel", "documents in and kept per stage"),
        ("img", "removals", "removed and quarantined documents by stage and reason"),
        *_origin_blocks(audit.get("origins") or {}),
    ]


def _origin_blocks(o: dict) -> list:
    """Where the removals came from: per input file (read, each stage's drops, left) and per source field."""
    files, sources = o.get("by_file") or {}, o.get("by_source") or {}
    if not files and not sources:
        return []
    keys = {k for v in files.values() for k in v["drops"]} | {k for v in sources.values() for k in v}
    stages = [st for st in data_stages() if any(k.split(": ")[0] == st for k in keys)]

    def cells(drops: dict) -> list:   # one column per stage: "total (count reason, ...)"
        out = []
        for st in stages:
            mine = {k.split(": ", 1)[1]: v for k, v in drops.items() if k.split(": ")[0] == st}
            total = sum(mine.values())
            out.append(f"{n(total)}: " + ", ".join(f"{r} {n(c)}" for r, c in sorted(mine.items())) if total else "")
        return out

    file_rows = [[f, n(v["read"]), *cells(v["drops"]), n(v["left"]),
                  f"{100 * (v['read'] - v['left']) / v['read']:.1f}%" if v["read"] else "—"]
                 for f, v in files.items()]
    src_rows = [[s_, *cells(v), n(sum(v.values()))] for s_, v in sources.items()]
    return [("h", 3, "Removals by input file and by source"),
            ("p", "Each input file: documents read at ingest, what each stage removed or quarantined, by reason "
                  "(from the ledgers' detail, which names the file), and what is left after the last data stage; "
                  "then the same drops by the records' own source field (— = not known at that stage, e.g. a "
                  "line that is not valid JSON). A file that loses far more than the others is worth a look."),
            ("table", ["input file", "read", *stages, "left", "dropped"], file_rows),
            ("details", f"by source field ({len(src_rows)})", [("table", ["source", *stages, "total"], src_rows)])]


def _filter_blocks(c: dict) -> list:
    fp = c.get("filter") or {}
    if not fp:
        return [("p", "cbrn/stats.json records no filter fingerprint.")]
    pol = fp.get("policy") or {}
    rows = [["lexicon version", str(fp.get("lexicon_version"))], ["lexicon sha256", str(fp.get("lexicon_sha256"))],
            ["model sha256", str(fp.get("model_sha256"))], ["policy sha256", str(fp.get("policy_sha256"))]]
    rows += [[k, str(pol[k])] for k in ("threshold", "threshold_strong", "threshold_without_terms") if k in pol]
    return [("h", 3, "Filter"), ("p", "As recorded by the cbrn stage in cbrn/stats.json."),
            ("table", ["key", "value"], rows),
            ("details", "the whole policy", [("table", ["policy key", "value"],
                                              [[k, str(v)] for k, v in sorted(pol.items())])])]


def _levels_blocks(c: dict) -> list:
    """What each policy level would remove in this run (every decision records the levels that remove it)."""
    from filters.decide import LEVEL_TEXT, LEVELS
    pol = (c.get("filter") or {}).get("policy") or {}
    chosen, th = pol.get("policy"), pol.get("levels") or {}
    lv = c.get("levels") or {}
    reasons_seen = sorted({r for v in lv.values() for r in v["by_reason"]})
    cal = c.get("calibration") or {}
    rows = []
    for name in LEVELS:
        v, t = lv.get(name) or {"removed": 0, "by_reason": {}}, th.get(name) or {}
        cv = ((cal.get("levels") or {}).get(name) or {}).get("cv") or {}
        rows.append([name + (" (this run)" if name == chosen else ""), n(v["removed"])]
                    + [n(v["by_reason"].get(r, 0)) for r in reasons_seen]
                    + [f"{f(t.get('threshold'))} / {f(t.get('threshold_strong'))} / "
                       f"{f(t.get('threshold_without_terms')) if t.get('threshold_without_terms') is not None else '—'}",
                       f"{f(cv.get('recall'))} / {f(cv.get('fpr'))}" if cv else "—",
                       LEVEL_TEXT[name]])
    sources = sorted({s for v in lv.values() for s in v["by_source"]})
    src_rows = [[s] + [n((lv.get(name) or {"by_source": {}})["by_source"].get(s, 0)) for name in LEVELS]
                for s in sources]
    cv_note = (f"CV recall / FPR: {cal.get('folds')}-fold cross-validation on the training data only "
               f"({cal.get('model_metadata')}); the plot shows the out-of-fold curves the thresholds were read from."
               if cal else "CV recall / FPR: not shown (the model's metadata is missing or belongs to another model).")
    out = [("h", 3, "Policy levels: what each would remove in this run"),
           ("p", "Every decision records which levels would remove the document, so this compares the levels on "
                 "this run's own documents without running the filter again. Thresholds: one term / strong "
                 "evidence (two terms, a disguised name, hazard context) / no term (— = no removal without a term). "
                 + cv_note),
           ("table", ["level", "would remove"] + reasons_seen + ["thresholds", "CV recall / FPR", "what it removes"],
            rows)]
    if cal.get("curve"):
        out.append(("img", "levels", "cross-validated recall and FPR against the threshold, each level's marked"))
    out += _rationale_blocks(cal, th)
    return out + [("details", f"by source ({len(sources)})", [("table", ["source"] + list(LEVELS), src_rows)])]


def wilson(k: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion k / total (sound at 0 and at small counts)."""
    if not total:
        return 0.0, 1.0
    p = k / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def _rationale_blocks(cal: dict, th: dict) -> list:
    """How each level's thresholds were chosen, with the cross-validated recall / FPR and their 95 % intervals."""
    from filters.decide import LEVELS
    if not cal.get("levels"):
        return []
    rows = []
    for name in LEVELS:
        lv, t = (cal["levels"].get(name) or {}), th.get(name) or {}
        cv, calib = lv.get("cv") or {}, lv.get("calib") or {}
        if not cv:
            continue
        tp, fn, fp, tn = (int(cv.get(k, 0)) for k in ("tp", "fn", "fp", "tn"))
        r_lo, r_hi = wilson(tp, tp + fn)
        f_lo, f_hi = wilson(fp, fp + tn)
        no_term = ("none: no removal without a lexicon term" if t.get("threshold_without_terms") is None else
                   f"{f(t.get('threshold_without_terms'))}: at most {lv.get('corpus_rate')} of "
                   f"{n(calib.get('documents'))} held-out corpus documents removed without a term "
                   f"({n(calib.get('no_term_removed'))} were)" if calib else f(t.get("threshold_without_terms")))
        rows.append([name, f"{f(t.get('threshold'))}: keeps {lv.get('target_recall')} of term-matched positives",
                     f"{f(t.get('threshold_strong'))}: keeps {lv.get('strong_target_recall')} of positives with "
                     f"strong evidence", no_term,
                     f"{f(cv.get('recall'))} [{f(r_lo)}, {f(r_hi)}] ({n(tp)} of {n(tp + fn)})",
                     f"{f(cv.get('fpr'))} [{f(f_lo)}, {f(f_hi)}] ({n(fp)} of {n(fp + tn)})"])
    if not rows:
        return []
    return [("h", 4, "Why these thresholds"),
            ("p", f"Chosen on the training data only, never on a test or dev set: {cal.get('folds')}-fold "
                  "cross-validation gives every training document an out-of-fold score; each threshold is read "
                  "off those scores at the level's target, and the no-term threshold also from a held-out split of "
                  "real corpus documents. Recall and FPR are the cross-validated ones, with 95 % Wilson intervals "
                  "(documents in brackets)."),
            ("table", ["level", "one term", "strong evidence", "no term", "CV recall [95 % CI]", "CV FPR [95 % CI]"],
             rows),
            ("details", "the rule, as the model's metadata records it", [("p", str(cal.get("rule") or "—"))])]


def _scores_blocks(c: dict) -> list:
    sc = c.get("scores") or {}
    edges = sc.get("bins") or []
    if len(edges) < 2:
        return [("h", 3, "Scores"), ("p", "cbrn/stats.json records no score histogram.")]
    kept, rem = sc.get("kept") or [], sc.get("removed") or []
    rows = [[f"{f(a, 3)}–{f(b, 3)}", n(kept[i] if i < len(kept) else None), n(rem[i] if i < len(rem) else None)]
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
    unscored = sc.get("unscored") or {}
    note = ""
    if unscored.get("kept") or unscored.get("removed"):
        note = (f" Not in the histogram: {n(unscored.get('kept', 0))} kept and {n(unscored.get('removed', 0))} "
                f"removed documents the policy decided without the classifier (short documents with no "
                f"lexicon term are not scored; blocklist-only removals carry no score).")
    return [("h", 3, "Scores"),
            ("p", "Histogram of the best-chunk classifier score from cbrn/stats.json (documents scored by the stage); "
                  "the vertical lines are the policy's thresholds." + note),
            ("img", "scores", "classifier score histogram, kept vs removed"),
            ("details", "histogram counts", [("table", ["score bin", "kept", "removed"], rows)])]


def _counts_blocks(title: str, counts: dict | None, what: str, img: str, docs: str, empty: str) -> list:
    if counts is None:
        return [("h", 3, title), ("p", f"cbrn/stats.json records no {what} counts.")]
    if not counts:
        return [("h", 3, title), ("p", empty)]
    rows = [[k, n(v)] for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [("h", 3, title), ("img", img, title),
            ("details", f"table ({len(rows)} {what})", [("table", [what.rstrip("s"), docs], rows)])]


def cbrn(audit: dict) -> list:
    c = audit["cbrn"]
    out = [("h", 2, "2. CBRN filter")]
    if not c.get("present"):
        return out + [("p", "The cbrn stage has not run in this run directory (no cbrn/stats.json, no ledger).")]
    if not c.get("complete"):
        out.append(("bad", ["The cbrn stage did not finish (no cbrn/stats.json): the figures below come from the "
                            "ledger rows written so far."]))
    k = c["counts"]
    out += [("p", f"From the cbrn ledger: {n(k['removed'])} removed ({n(k['removed_without_terms'])} of them with no "
                  f"lexicon term, on the classifier score alone), "
                  f"{n(k['kept_with_terms'])} kept with lexicon hits (hard negatives), {n(k['errors'])} quarantined "
                  "because the filter failed (fail closed).")]
    out += _filter_blocks(c) + _levels_blocks(c) + _scores_blocks(c)
    out += _counts_blocks("Top matched terms", c.get("terms"), "terms", "terms", "removed docs",
                          "No lexicon term matched in any removed document.")
    out += _counts_blocks("Matched lists", c.get("lists"), "lists", "lists", "term matches in removed docs",
                          "No lexicon term matched in any removed document.")
    out += _counts_blocks("Terms matched in kept documents", c.get("kept_terms"), "terms", "kept_terms",
                          "kept docs", "No kept document matched a lexicon term.")
    rule = (f"Context: at most {SNIPPET_WORDS} words either side of each match, re-clipped by the audit; no other "
            "text of a document is shown.")
    rows = [[r["id"], r["reason"], f"{f(r['score'])} / {f(r['threshold'])} ({r.get('threshold_rule', '—')})",
             (r.get("sha256") or "—")[:16], f"{r.get('source') or '—'}:{n(r.get('line'))}", _terms_cell(r)]
            for r in c["sample"]]
    out += [("h", 3, "Removed documents (sample)"),
            ("p", f"{c['sample_rule']}. {rule}"),
            ("table", ["id", "reason", "score / threshold (which)", "sha256", "source:line",
                       "matched terms and context"], rows)
            if rows else ("p", "No document was removed.")]
    hard = c["hard_negatives"]
    rows = [[r["id"], f"{f(r['score'])} / {f(r['threshold'])}", _terms_cell(r)] for r in hard]
    out.append(("h", 3, "Hard negatives: kept despite lexicon hits"))
    if rows:
        out += [("p", f"{n(k['kept_with_terms'])} kept document(s) matched lexicon terms but stayed below the "
                      f"threshold; the {n(len(hard))} closest to removal (highest score first). {rule}"),
                ("table", ["id", "score / threshold", "matched terms and context"], rows)]
    else:
        out.append(("p", "No kept document matched a lexicon term."))
    near = c.get("near_misses") or []
    out.append(("h", 3, "Near misses: kept documents without a lexicon term, closest to their threshold"))
    if near:
        out += [("p", f"The classifier scored {n(c.get('scored_kept_without_terms', len(near)))} kept document(s) "
                      f"that matched no lexicon term; the {n(len(near))} closest to their threshold (score / "
                      f"threshold, highest first). Every scored document's score is in the cbrn ledger "
                      f"(`python -m pipeline explain RUN_DIR ID`)."),
                ("table", ["id", "score / threshold", "source"],
                 [[r["id"], f"{f(r['score'])} / {f(r['threshold'])}", r.get("source") or "—"] for r in near])]
    else:
        out.append(("p", "No kept document without a lexicon term was scored."))
    if c["errors"]:
        out += [("h", 3, "Filter errors (quarantined)"),
                ("table", ["id", "reason", "error"], [[e["id"], e["reason"], e["error"]] for e in c["errors"]])]
    return out


def evaluation(audit: dict) -> list:
    ev = audit.get("evaluation")
    out = [("h", 2, "3. Evaluation on a labeled set")]
    if not ev:
        gone = audit.get("earlier_evaluation")
        if gone:
            return out + [("p", f"NOT EVALUATED AGAIN: an earlier audit of this run evaluated {gone['data']}, but "
                                f"{gone['why']}. Pass --labeled FILE to evaluate a labeled set, or --no-labeled to "
                                "go without.")]
        return out + [("p", "No labeled set was given (python -m filters.audit RUN_DIR --labeled FILE, or "
                            "cbrn.audit_labeled in the config).")]
    cs = ev["curves"]["classifier_score"]
    rows = [["labeled set", ev["data"]], ["sha256", ev["sha256"]],
            ["documents", f"{n(ev['n'])} ({n(ev['positives'])} positive, {n(ev['negatives'])} negative)"],
            ["tp / fp / fn / tn", f"{n(ev['tp'])} / {n(ev['fp'])} / {n(ev['fn'])} / {n(ev['tn'])}"],
            ["recall", f(ev["recall"])], ["false positive rate", f(ev["fpr"])], ["precision", f(ev["precision"])],
            ["ROC AUC (classifier score)", f(cs["roc_auc"])], ["filter errors", n(ev["errors"])],
            ["same filter as the run", "yes" if ev["fingerprint_matches_run"] else Bad("NO")]]
    fails = [[n(x["line"]), n(x["label"]), x["decision"], x["reason"] or "—",
              f"{f(x['score'])} / {f(x['threshold'])}",
              ", ".join(x["terms"]) or "—", x["note"]] for x in ev["false_negatives"] + ev["false_positives"]]
    out += [("p", "The run's filter (same config) applied to the labeled set; this is the one section that runs "
                  "the filter instead of reading the ledger. Texts of the labeled set are not shown."),
            ("table", ["metric", "value"], rows), ("img", "evaluation", "ROC and precision-recall curves")]
    if fails:
        out += [("details", f"{len(fails)} misclassified labeled documents",
                 [("table", ["line", "label", "decision", "reason", "score / threshold", "terms", "note"], fails)])]
    return out


def reproduce(audit: dict) -> list:
    h = audit["hashes"]
    rows = [["config", h["config"]["path"], h["config"]["sha256"] or "missing", "—"]]
    for k in ("lexicon", "model", "model_metadata"):
        e = h[k]
        rec = e.get("recorded")
        rows.append([k, e["path"], e["sha256"] or Bad("missing"),
                     "—" if rec is None else ("same" if rec == e["sha256"] else Bad(f"DIFFERS: run used {rec}"))])
    out = [("h", 2, "4. Reproduce"),
            ("p", "sha256 of everything that decides the outputs, and of the outputs. To reproduce: "
                  "python -m pipeline run --config RUN_DIR/config.json --run-dir NEW_DIR, then "
                  "python -m filters.audit NEW_DIR; every input and stage digest below must be equal."),
            ("table", ["what", "path", "sha256", "recorded by the cbrn stage"], rows),
            ("h", 3, "Inputs"),
            ("p", f"From ingest/inputs.json; digest of the list: {h['inputs_digest'] or '—'}"),
            ("table", ["path", "kind", "sha256"], [[i["path"], i.get("kind") or "—", i["sha256"] or Bad("MISSING")]
                                                 for i in h["inputs"]]) if h["inputs"] else ("p", "No inputs.json.")]
    rows = [[s, n(e["files"]), n(e["bytes"]), e["digest"]] for s, e in h["stages"].items()]
    out += [("h", 3, "Outputs per stage"),
            ("p", "Every file of the stage directory except logs/, _tasks/, work/ and timing.json; the digest is "
                  "sha256 over sorted 'path sha256' lines (per-file list in audit.json)."),
            ("table", ["stage", "files", "bytes", "digest"], rows)]
    for s, e in h["stages"].items():
        out.append(("details", f"{s}: {n(e['files'])} files",
                    [("table", ["path", "sha256"], [[x["path"], x["sha256"]] for x in e["file_list"]])]))
    return out


def blocks(audit: dict) -> list:
    status = ("bad", audit["problems"]) if audit["problems"] else ("ok", "All checks pass: every stage's books "
                                                                          "balance and equal a recount of its ledger.")
    return [("h", 1, f"CBRN audit report: run {audit['run']}"), status,
            ("p", "Every number comes from a ledger or stats file of the run directory (except the labeled-set "
                  "evaluation). No text of a removed document is shown beyond a few words around a matched term."),
            *accounting(audit), *cbrn(audit), *evaluation(audit), *reproduce(audit)]
