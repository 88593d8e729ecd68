"""`python -m pipeline explain RUN_DIR ID [ID ...] [--json]`: what happened to one document, stage by stage.

For each id: every data stage's ledger row (decision, reason and what the stage recorded), the chain of
near-duplicates it was removed in favour of, the CBRN evidence (score against the threshold that applied,
matched terms with at most 8 words of context either side, disguised spellings, hazard context, the
levels that would remove it, the best window of a classifier-only removal) and where the document
ended. Read from the ledgers only: nothing is rescored, and no more of a document is shown than the
audit report shows. Exit 0 when every id was found, 1 when one was not (close ids are suggested).
"""
from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import orjson
import pyarrow.compute as pc

from common import reasons
from pipeline.ledger import read_ledger
from pipeline.stages import data_stages

MAX_SUGGEST_IDS = 200_000  # above this many ids, no "did you mean" (difflib over millions is slow)


def _rows(table, ids: set[str]) -> dict[str, dict]:
    """The rows of a ledger table whose id is in `ids`."""
    import pyarrow as pa
    if table.num_rows == 0:
        return {}
    t = table.filter(pc.is_in(table.column("id"), value_set=pa.array(sorted(ids), type=pa.string())))
    return {r["id"]: r for r in t.to_pylist()}


def _detail(raw: str) -> dict:
    try:
        d = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {"_unparseable": True}
    return d if isinstance(d, dict) else {"_unparseable": True}


def _cbrn_view(d: dict) -> dict:
    """What the cbrn stage recorded, with every context re-clipped by the audit's rule."""
    from filters.audit.snippets import clip
    terms = []
    for t in d.get("terms") or []:
        if isinstance(t, dict):
            names = [t.get("term", ""), *(t.get("aliases") or [])]
            terms.append({"term": t.get("term"), "count": t.get("count"), "lists": t.get("lists"),
                          "context": [clip(c, names) for c in (t.get("context") or [])]})
    out = {"score": d.get("score"), "threshold": d.get("threshold"), "n_terms": d.get("n_terms"),
           "escalated": d.get("escalated"), "terms": terms, "evidence": d.get("evidence") or {},
           "levels": d.get("levels")}  # None: recorded by a filter version without levels
    if d.get("best_window"):
        w = d["best_window"]
        out["best_window"] = {"score": w.get("score"), "words": w.get("words"),
                              "starts": " ".join(str(w.get("starts", "")).split()[:8])}
    return out


def explain(run_dir: str | Path, ids: list[str]) -> dict[str, dict]:
    """{id: {"found", "stages": [{"stage", "decision", "reason", ...}], "ends", "duplicate_chain"}}."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
    wanted = set(ids)
    ledgers = {name: read_ledger(run_dir / name) for name in data_stages() if (run_dir / name / "ledger").is_dir()}
    per_stage = {name: _rows(t, wanted) for name, t in ledgers.items()}
    out = {}
    for doc_id in ids:
        stages, ends = [], None
        for stage, rows in per_stage.items():
            r = rows.get(doc_id)
            if r is None:
                continue
            det = _detail(r["detail"])
            entry = {"stage": stage, "decision": r["decision"], "reason": r["reason"]}
            if stage == "cbrn" and det:
                entry["cbrn"] = _cbrn_view(det)
            elif det:
                entry["detail"] = {k: v for k, v in det.items() if k not in ("text", "raw")}
            stages.append(entry)
            ends = f"{r['decision']} at {stage}" + (f" ({r['reason']})" if r["reason"] else "")
        chain = _duplicate_chain(ledgers.get("dedupe"), doc_id)
        out[doc_id] = {"found": bool(stages), "stages": stages, "ends": ends, "duplicate_chain": chain}
    return out


def _duplicate_chain(dedupe, doc_id: str) -> list[str]:
    """The documents `doc_id` was removed in favour of, each removed in favour of the next, to the kept one
    (`dedupe`: the dedupe ledger, read once)."""
    chain, seen = [], {doc_id}
    cur = _rows(dedupe, {doc_id}).get(doc_id) if dedupe is not None else None
    while cur is not None and cur["decision"] == reasons.REMOVED:
        nxt = _detail(cur["detail"]).get("duplicate_of")
        if not isinstance(nxt, str) or nxt in seen:
            break
        chain.append(nxt)
        seen.add(nxt)
        cur = _rows(dedupe, {nxt}).get(nxt)
    return chain


def suggestions(run_dir: Path, doc_id: str) -> list[str]:
    t = read_ledger(Path(run_dir) / "ingest")
    if t.num_rows == 0 or t.num_rows > MAX_SUGGEST_IDS:
        return []
    return difflib.get_close_matches(doc_id, t.column("id").to_pylist(), n=3)


def _fmt(x) -> str:
    return "-" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


def print_text(run_dir: Path, result: dict[str, dict], file=sys.stdout) -> None:
    for doc_id, r in result.items():
        print(doc_id, file=file)
        if not r["found"]:
            near = suggestions(run_dir, doc_id)
            print("  not in any stage's ledger" + (f"; did you mean {', '.join(near)}?" if near else ""), file=file)
            continue
        for e in r["stages"]:
            line = f"  {e['stage']:<9} {e['decision']:<11} {e['reason']}"
            det = e.get("detail") or {}
            if "duplicate_of" in det:
                line += f"  duplicate of {det['duplicate_of']}"
                if "jaccard_est" in det:
                    line += f" (estimated Jaccard {det['jaccard_est']})"
            elif e["decision"] == reasons.QUARANTINED and det.get("error"):
                line += f"  {det.get('file', '')}:{det.get('line', '')}: {det['error']}"
            print(line.rstrip(), file=file)
            c = e.get("cbrn")
            if c:
                print(f"            score {_fmt(c['score'])} against threshold {_fmt(c['threshold'])}"
                      f"; levels that remove it: " + ("not recorded" if c["levels"] is None
                                                      else ", ".join(c["levels"]) or "none"), file=file)
                for t in c["terms"]:
                    ctx = f": {t['context'][0]}" if t["context"] else ""
                    print(f"            term {t['term']} x{t['count']}{ctx}", file=file)
                for k, v in c["evidence"].items():
                    print(f"            evidence {k}: {json.dumps(v, ensure_ascii=False)[:200]}", file=file)
                if "best_window" in c:
                    w = c["best_window"]
                    print(f"            best window words {w['words']} (score {_fmt(w['score'])}), "
                          f"starting: {w['starts']}", file=file)
        if r["duplicate_chain"]:
            print(f"  removed in favour of: {' -> '.join(r['duplicate_chain'])}", file=file)
        print(f"  ends: {r['ends']}", file=file)


def main(run_dir: str, ids: list[str], as_json: bool = False) -> int:
    result = explain(run_dir, ids)
    if as_json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
    else:
        print_text(Path(run_dir), result)
    return 0 if all(r["found"] for r in result.values()) else 1
