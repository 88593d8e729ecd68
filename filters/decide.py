"""The decision: lexicon match -> escalation -> chunked classifier -> keep / remove / error, with reasons.

Default policy (modelled on multi-stage filters such as Deep Ignorance's): a document whose distinct
lexicon terms reach `escalate_min_terms` is escalated and removed when its best chunk passes the
calibrated threshold (`cbrn_classifier`); with `strong_min_terms` or more terms the calibrated
`threshold_strong` applies (lower: such documents are rarely benign); a document with no term is
still scored (on by default) when it has at least `min_words_without_terms` words, and removed above the
stricter no-term threshold (calibrated to a target removal rate on held-out real corpus text); a document
dense in Tier-1 / Schedule-1 terms is
removed on the blocklist alone (`cbrn_blocklist`). Any failure inside the filter is an error, which
the pipeline quarantines (fail closed). Decisions are deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common import reasons
from common.filter_record import policy_sha256
from common.io import read_json, sha256_bytes, sha256_file
from filters.classifier import Classifier
from filters.config import CbrnConfig
from filters.lexicon import DEFAULT_LEXICON, load_lexicon
from filters.match import Matcher, snippet

DEFAULT_MODEL = Path(__file__).parent / "models" / "cbrn_default.ftz"
KEEP, REMOVE, ERROR = "keep", "remove", "error"
LEDGER = {KEEP: reasons.KEPT, REMOVE: reasons.REMOVED, ERROR: reasons.QUARANTINED}


def metadata_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass
class Decision:
    decision: str                 # keep | remove | error
    reason: str                   # "" when kept, else a common.reasons constant
    score: float | None
    threshold: float | None
    terms: list[str]              # canonical lexicon names
    detail: dict = field(default_factory=dict)

    @property
    def ledger_decision(self) -> str:
        return LEDGER[self.decision]

    def to_dict(self) -> dict:
        return {"decision": self.decision, "reason": self.reason, "score": self.score, "threshold": self.threshold,
                "terms": self.terms, "detail": self.detail}


def error_decision(reason: str, message: str) -> Decision:
    return Decision(ERROR, reason, None, None, [], {"error": message})


class CbrnFilter:
    """Build once per process (`from_config`), then `decide` / `decide_batch`. The fastText model is
    loaded lazily in the process that first scores, so the object is safe to create before a fork."""

    def __init__(self, cfg: CbrnConfig):
        cfg.validate()
        self.cfg = cfg
        self.lexicon = load_lexicon(cfg.lexicon_path or DEFAULT_LEXICON)
        self.matcher = Matcher(self.lexicon, context_window=cfg.context_window)
        self.model_path = Path(cfg.model_path) if cfg.model_path else DEFAULT_MODEL
        if not self.model_path.is_file():
            raise FileNotFoundError(f"cbrn model not found: {self.model_path} (build it with `make cbrn-model`)")
        meta_p = metadata_path(self.model_path)
        self.meta = read_json(meta_p) if meta_p.is_file() else {}
        self.model_sha256 = sha256_file(self.model_path)
        cal = self.meta.get("threshold")
        self.threshold = cfg.threshold if cfg.threshold is not None else cal
        if self.threshold is None:
            raise ValueError(f"no threshold: {meta_p} has none and cbrn.threshold is not set")
        ts = cfg.threshold_strong
        if ts is None:
            ts = cfg.threshold if cfg.threshold is not None else self.meta.get("threshold_strong", self.threshold)
        self.threshold_strong = min(ts, self.threshold)
        t0 = cfg.threshold_without_terms
        if t0 is None:
            t0 = max(self.threshold, self.meta.get("threshold_without_terms", self.threshold))
        self.threshold_without_terms = t0
        self.classifier = Classifier(str(self.model_path), cfg.chunk_words, cfg.chunk_overlap_words)

    @classmethod
    def from_config(cls, cfg: CbrnConfig | None = None) -> "CbrnFilter":
        return cls(cfg or CbrnConfig())

    # ------------------------------------------------------------------ identity for manifests
    def policy(self) -> dict:
        c = self.cfg
        return {"escalate_min_terms": c.escalate_min_terms, "strong_min_terms": c.strong_min_terms,
                "score_without_terms": c.score_without_terms, "min_words_without_terms": c.min_words_without_terms,
                "threshold": self.threshold,
                "threshold_strong": self.threshold_strong, "threshold_without_terms": self.threshold_without_terms,
                "chunk_words": c.chunk_words, "chunk_overlap_words": c.chunk_overlap_words,
                "term_window_words": c.term_window_words, "max_term_windows": c.max_term_windows,
                "blocklist_min_high_terms": c.blocklist_min_high_terms,
                "blocklist_min_density": c.blocklist_min_density, "context_window": c.context_window}

    def fingerprint(self) -> dict:
        pol = self.policy()
        return {"lexicon_sha256": self.lexicon.sha256, "lexicon_version": self.lexicon.version,
                "model_sha256": self.model_sha256, "threshold": self.threshold, "policy": pol,
                "policy_sha256": policy_sha256(pol)}

    # ------------------------------------------------------------------ decisions
    def decide(self, text) -> Decision:
        return self.decide_batch([text])[0]

    def decide_batch(self, texts: list) -> list[Decision]:
        out: list[Decision | None] = [None] * len(texts)
        ok = []
        for i, t in enumerate(texts):
            if isinstance(t, str):
                ok.append(i)
            else:
                out[i] = error_decision(reasons.CBRN_ERROR, f"text is {type(t).__name__}, not a string")
        for b in range(0, len(ok), self.cfg.batch_size):
            idx = ok[b:b + self.cfg.batch_size]
            try:
                res = self._decide_many([texts[i] for i in idx])
            except Exception:  # one bad document must not take its batch down: retry one by one
                res = []
                for i in idx:
                    try:
                        res.append(self._decide_many([texts[i]])[0])
                    except Exception as e:  # fail closed
                        res.append(error_decision(reasons.CBRN_ERROR, f"{type(e).__name__}: {e}"))
            for i, d in zip(idx, res):
                out[i] = d
        return out  # type: ignore[return-value]

    def _decide_many(self, texts: list[str]) -> list[Decision]:
        cfg = self.cfg
        matches = self.matcher.scan_batch(texts)
        summaries = [self._summarise(t, m) for t, m in zip(texts, matches)]
        need = [i for i, s in enumerate(summaries) if s["escalated"] or
                (cfg.score_without_terms and s["words"] >= cfg.min_words_without_terms)]
        chunk_scores = self.classifier.chunk_scores_batch([texts[i] for i in need]) if need else []
        scores = {i: cs for i, cs in zip(need, chunk_scores)}
        # a short passage is diluted in its chunk (a long document's, or a short document that is mostly about
        # something else): also score windows centred on the terms of every escalated document
        win_docs, win_texts = [], []
        for i in need:
            if summaries[i]["escalated"]:
                for w in term_windows(texts[i], matches[i], cfg.term_window_words, cfg.max_term_windows):
                    win_docs.append(i)
                    win_texts.append(w)
        if win_texts:
            for i, ws in zip(win_docs, self.classifier.chunk_scores_batch(win_texts)):
                scores[i] = np.concatenate([scores[i], ws])
        out = []
        for i, (text, s) in enumerate(zip(texts, summaries)):
            cs = scores.get(i)
            score = float(cs.max()) if cs is not None and len(cs) else None
            if s["n_terms"] >= cfg.strong_min_terms:
                thr = self.threshold_strong
            elif s["escalated"]:
                thr = self.threshold
            else:
                thr = self.threshold_without_terms
            hc = s["high_concern"]
            dense = (hc["distinct"] >= cfg.blocklist_min_high_terms and hc["per_100_words"] >= cfg.blocklist_min_density)
            if score is not None and score >= thr:
                decision, reason = REMOVE, reasons.CBRN_CLASSIFIER
            elif dense:
                decision, reason = REMOVE, reasons.CBRN_BLOCKLIST
            else:
                decision, reason = KEEP, ""
            detail = {
                "escalated": s["escalated"], "n_terms": s["n_terms"], "words": s["words"], "terms": s["terms"],
                "high_concern": hc,
                "score": None if score is None else round(score, 6), "threshold": thr,
                "chunks": None if cs is None else {"n": int(len(cs)), "max": round(float(cs.max()), 6),
                                                   "mean": round(float(cs.mean()), 6),
                                                   "n_over": int((cs >= thr).sum())},
                "lexicon_version": self.lexicon.version,
            }
            out.append(Decision(decision, reason, None if score is None else round(score, 6), thr,
                                [t["term"] for t in s["terms"]], detail))
        return out

    def _summarise(self, text: str, matches) -> dict:
        cfg, entries = self.cfg, self.lexicon.entries
        by: dict[int, list] = {}
        for m in matches:
            by.setdefault(m.entry, []).append(m)
        terms = []
        for ei in sorted(by, key=lambda k: (-len(by[k]), entries[k].term)):
            e, ms = entries[ei], by[ei]
            terms.append({
                "term": e.term, "category": e.category, "lists": e.list_ids, "tier1": e.tier1,
                "schedule1": e.schedule1, "dual_use_common": e.dual_use_common, "count": len(ms),
                "aliases": sorted({m.alias for m in ms}), "kinds": sorted({m.kind for m in ms}),
                "context": [snippet(text, m.start, m.end, cfg.snippet_words) for m in ms[:cfg.max_snippets_per_term]],
            })
        counted = [t for t in terms if not t["dual_use_common"]]
        high = [t for t in terms if t["tier1"] or t["schedule1"]]
        occ = sum(t["count"] for t in high)
        words = len(text.split())
        return {
            "terms": terms[:cfg.max_terms_in_detail],
            "words": words,
            "n_terms": len(counted),
            "escalated": len(counted) >= cfg.escalate_min_terms,
            "high_concern": {"distinct": len(high), "occurrences": occ,
                             "per_100_words": round(100.0 * occ / words, 3) if words else 0.0},
        }


def term_windows(text: str, matches, half_words: int, limit: int) -> list[str]:
    """Up to `limit` windows of `half_words` words either side of the first match of each term."""
    out, seen = [], set()
    for m in matches:
        if m.entry in seen or len(out) >= limit:
            continue
        seen.add(m.entry)
        left = text[:m.start].split()[-half_words:]
        right = text[m.end:].split()[:half_words]
        out.append(" ".join(left + [text[m.start:m.end]] + right))
    return out


def filter_fingerprint(cfg: CbrnConfig | None = None) -> dict:
    """{"lexicon_sha256", "model_sha256", "threshold", "policy", ...} for the tokenize manifest."""
    return CbrnFilter.from_config(cfg).fingerprint()


def audit_record(doc_id: str, text: str, decision: Decision, source: str | None = None, line: int | None = None,
                 keep_text: bool = False) -> dict:
    """What the outputs keep for a removed document: id, sha256 and where it came from, not the text
    (unless `keep_text`, for reviewers who need it)."""
    rec = {"id": doc_id, "sha256": sha256_bytes(text.encode("utf-8", "surrogatepass")), "source": source,
           "line": line, "decision": decision.decision, "reason": decision.reason, "score": decision.score,
           "threshold": decision.threshold, "terms": decision.terms}
    if keep_text:
        rec["text"] = text
    return rec


