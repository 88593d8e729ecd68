"""The decision: lexicon match -> evidence -> chunked classifier -> keep / remove / error, with reasons.

Policy levels (`cbrn.policy`), each with thresholds chosen by cross-validation on the training data
(the model's metadata JSON, `levels`): what each removes is written for a reviewer in LEVEL_TEXT.
Every decision also records which other levels would have removed the document (`detail.levels`), so
the audit can show the cost of a stricter or laxer setting on the run itself.

Balanced policy (modelled on multi-stage filters such as Deep Ignorance's): a document whose distinct
lexicon terms reach `escalate_min_terms` is escalated and removed when its best chunk passes the
calibrated threshold (`cbrn_classifier`); with `strong_min_terms` or more terms the calibrated
`threshold_strong` applies (lower: such documents are rarely benign); a document with no term is
still scored (on by default) when it has at least `min_words_without_terms` words and uses the field's
vocabulary (`no_term_min_domain_words`), and removed above the stricter no-term threshold (calibrated to a
target removal rate on held-out real corpus text, counting every long no-term document); a document
dense in Tier-1 / Schedule-1 terms is
removed on the blocklist alone (`cbrn_blocklist`). Any failure inside the filter is an error, which
the pipeline quarantines (fail closed). Decisions are deterministic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common import reasons
from common.config import ConfigError
from common.filter_record import policy_sha256
from common.io import read_json, sha256_bytes, sha256_file
from filters.classifier import Classifier
from filters.config import LEVELS, CbrnConfig
from filters.evidence import CATEGORY_LISTS, context_cues, domain_words, obfuscated_matches
from filters.lexicon import DEFAULT_LEXICON, load_lexicon
from filters.match import Matcher, snippet

DEFAULT_MODEL = Path(__file__).parent / "models" / "cbrn_default.ftz"
LEVEL_TEXT = {
    "narrow": "documents the classifier is confident are about a listed agent: the clearest CBRN-topic text "
              "(fewest removals; borderline history and regulatory text is kept); no removal without a term",
    "balanced": "CBRN-topic documents: a listed agent named (plainly or disguised) and the classifier agreeing, "
                "with a lower bar when there is more evidence (two terms, a disguised name, hazard or regulatory "
                "context); documents that describe an agent without naming it when the classifier is very sure",
    "broad": "any substantive discussion of listed agents: everything balanced removes, plus every document that "
             "names a listed agent twice or names two listed agents (blocklist first, as Deep Ignorance's strong "
             "filter), at the cost of encyclopedic and news text about them",
}


@dataclass(frozen=True)
class Level:
    """One policy level's thresholds (None: that path removes nothing at this level)."""
    name: str
    threshold: float
    threshold_strong: float
    threshold_without_terms: float | None
    blocklist_mentions: bool = False  # broad: a listed agent named twice, or two listed agents, is enough

    def threshold_for(self, summary: dict, cfg: CbrnConfig) -> float | None:
        if summary["strong"]:
            return self.threshold_strong
        if summary["escalated"]:
            return self.threshold
        if scored_without_terms(summary, cfg):
            return self.threshold_without_terms
        return None

    def reason(self, summary: dict, score: float | None, cfg: CbrnConfig) -> str:
        thr = self.threshold_for(summary, cfg)
        if score is not None and thr is not None and score >= thr:
            return reasons.CBRN_CLASSIFIER
        hc = summary["high_concern"]
        if hc["distinct"] >= cfg.blocklist_min_high_terms and hc["per_100_words"] >= cfg.blocklist_min_density:
            return reasons.CBRN_BLOCKLIST
        if self.blocklist_mentions and (summary["n_terms"] >= 2 or summary["max_mentions"] >= 2):
            return reasons.CBRN_BLOCKLIST
        return ""


def scored_without_terms(summary: dict, cfg: CbrnConfig) -> bool:
    """A document without an escalating term is scored when it uses the field's words: `summarise` looks
    for them (evidence["domain"]) only in the documents the no-term path may score (long enough)."""
    domain = summary["evidence"].get("domain")
    return domain is not None and len(domain) >= cfg.no_term_min_domain_words


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
        known = {e.term for e in self.lexicon.entries}
        for i, term in [(f"generic_terms[{i}]", t) for i, t in enumerate(cfg.generic_terms)] + \
                [(f"passing_terms[{i}]", t) for i, t in enumerate(cfg.passing_terms)]:
            if term not in known:
                import difflib
                near = difflib.get_close_matches(str(term), sorted(known), n=1)
                raise ConfigError(f"cbrn.{i}: {term!r} is not a term of the lexicon "
                                  f"({cfg.lexicon_path or DEFAULT_LEXICON})"
                                  + (f"; did you mean {near[0]!r}?" if near else ""))
        self.model_path = Path(cfg.model_path) if cfg.model_path else DEFAULT_MODEL
        if not self.model_path.is_file():
            raise FileNotFoundError(f"cbrn model not found: {self.model_path} (build it with `make cbrn-model`)")
        meta_p = metadata_path(self.model_path)
        self.meta = read_json(meta_p) if meta_p.is_file() else {}
        self.model_sha256 = sha256_file(self.model_path)
        self.levels = {name: self._level(name) for name in LEVELS}
        self.level = self.levels[cfg.policy]
        self.threshold = self.level.threshold
        self.threshold_strong = self.level.threshold_strong
        self.threshold_without_terms = self.level.threshold_without_terms
        self.classifier = Classifier(str(self.model_path), cfg.chunk_words, cfg.chunk_overlap_words)

    def _level(self, name: str) -> Level:
        """A level's thresholds from the model's metadata (`levels`; a model without them: its one set of
        thresholds for every level); the config's thresholds override the chosen level's."""
        meta, cfg = self.meta, self.cfg
        lm = (meta.get("levels") or {}).get(name) or {
            "threshold": meta.get("threshold"), "threshold_strong": meta.get("threshold_strong", meta.get("threshold")),
            "threshold_without_terms": None if name == "narrow" else meta.get("threshold_without_terms")}
        t1, ts, t0 = lm["threshold"], lm["threshold_strong"], lm["threshold_without_terms"]
        if name == cfg.policy:
            t1 = cfg.threshold if cfg.threshold is not None else t1
            if cfg.threshold_strong is not None:
                ts = cfg.threshold_strong
            elif cfg.threshold is not None:
                ts = cfg.threshold
            if cfg.threshold_without_terms is not None:
                t0 = cfg.threshold_without_terms
        if t1 is None:
            raise ValueError(f"no threshold: {metadata_path(self.model_path)} has none for policy {name!r} "
                             f"and cbrn.threshold is not set")
        ts = min(t1 if ts is None else ts, t1)
        if t0 is not None:
            t0 = max(t0, t1)
        return Level(name, t1, ts, t0, blocklist_mentions=(name == "broad"))

    @classmethod
    def from_config(cls, cfg: CbrnConfig | None = None) -> "CbrnFilter":
        return cls(cfg or CbrnConfig())

    # ------------------------------------------------------------------ identity for manifests
    def policy(self) -> dict:
        c = self.cfg
        return {"policy": c.policy, "escalate_min_terms": c.escalate_min_terms, "strong_min_terms": c.strong_min_terms,
                "score_without_terms": c.score_without_terms, "min_words_without_terms": c.min_words_without_terms,
                "no_term_min_domain_words": c.no_term_min_domain_words,
                "threshold": self.threshold,
                "threshold_strong": self.threshold_strong, "threshold_without_terms": self.threshold_without_terms,
                "chunk_words": c.chunk_words, "chunk_overlap_words": c.chunk_overlap_words,
                "term_window_words": c.term_window_words, "max_term_windows": c.max_term_windows,
                "blocklist_min_high_terms": c.blocklist_min_high_terms,
                "blocklist_min_density": c.blocklist_min_density, "context_window": c.context_window,
                "evidence": {"obfuscated": c.evidence_obfuscated, "context_min_cues": c.context_min_cues,
                             "context_words": c.context_words, "generic_terms": sorted(c.generic_terms),
                             "passing_terms": sorted(c.passing_terms)},
                "levels": {n: {k: v for k, v in asdict(lv).items() if k != "name"} for n, lv in self.levels.items()}}

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
        need = [i for i, s in enumerate(summaries) if s["escalated"] or scored_without_terms(s, cfg)]
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
            thr = self.level.threshold_for(s, cfg)
            removing = {n: r for n, lv in self.levels.items() if (r := lv.reason(s, score, cfg))}
            reason = removing.get(self.level.name, "")
            decision = REMOVE if reason else KEEP
            detail = {
                "escalated": s["escalated"], "n_terms": s["n_terms"], "words": s["words"], "terms": s["terms"],
                "high_concern": s["high_concern"], "evidence": s["evidence"],
                "score": None if score is None else round(score, 6), "threshold": thr,
                "chunks": None if cs is None else {"n": int(len(cs)), "max": round(float(cs.max()), 6),
                                                   "mean": round(float(cs.mean()), 6),
                                                   "n_over": int((cs >= thr).sum()) if thr is not None else 0},
                "lexicon_version": self.lexicon.version,
            }
            if cs is not None and len(cs) and reason == reasons.CBRN_CLASSIFIER and not s["escalated"]:
                # no term to show: where in the document the classifier was most sure (word offsets)
                detail["best_window"] = best_window(text, cs, cfg.chunk_words, cfg.chunk_overlap_words)
            if removing:
                detail["levels"] = removing  # which levels remove it, and why (the chosen one included)
            out.append(Decision(decision, reason, None if score is None else round(score, 6), thr,
                                [t["term"] for t in s["terms"]], detail))
        return out

    def _summarise(self, text: str, matches) -> dict:
        return summarise(text, matches, self.lexicon, self.cfg)


def summarise(text: str, matches, lexicon, cfg: CbrnConfig) -> dict:
    """What the decision knows of a document before the classifier: its terms (with short context), the
    evidence, whether it escalates and to which threshold (`strong`), Tier-1 / Schedule-1 density."""
    entries = lexicon.entries
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
    escalated = len(counted) >= cfg.escalate_min_terms
    counted_matches = [m for m in matches if not entries[m.entry].dual_use_common]
    evidence = {}
    if escalated:
        if cfg.evidence_obfuscated and (obf := obfuscated_matches(text, counted_matches)):
            evidence["obfuscated"] = obf[:cfg.max_terms_in_detail]
        agents = [m for m in counted_matches if not CATEGORY_LISTS.intersection(entries[m.entry].list_ids)]
        cues = context_cues(text, agents, cfg.context_words)
        if len(cues) >= cfg.context_min_cues:
            evidence["context"] = cues
        generic, once = set(cfg.generic_terms), set(cfg.passing_terms)
        in_passing = sum(t["count"] for t in counted if t["term"] in once)
        if ("context" not in evidence and all(t["term"] in generic | once for t in counted)
                and in_passing <= 1):
            # only generic terms (an element, "chemical agent"), a category word ("nuclear weapons") at most
            # once, no hazard context: a mention in passing, the no-term way
            escalated, evidence = False, {"generic_only": sorted(t["term"] for t in counted)}
    if not escalated and cfg.score_without_terms and words >= cfg.min_words_without_terms:
        evidence["domain"] = domain_words(text)[:cfg.max_terms_in_detail]
    return {
        "terms": terms[:cfg.max_terms_in_detail],
        "words": words,
        "n_terms": len(counted),
        "escalated": escalated,
        "strong": escalated and (len(counted) >= cfg.strong_min_terms or bool(evidence)),
        "evidence": evidence,
        "max_mentions": max((t["count"] for t in counted), default=0),
        "high_concern": {"distinct": len(high), "occurrences": occ,
                         "per_100_words": round(100.0 * occ / words, 3) if words else 0.0},
    }


def best_window(text: str, chunk_scores, chunk_words: int, overlap_words: int) -> dict:
    """The highest-scoring classifier window of a document scored on its chunks alone (no term windows:
    a no-term document): its score and word range (of the normalised text), and its first few words, so
    a reviewer can find it in the document."""
    from filters.classifier import prep
    i = int(np.argmax(chunk_scores))
    start = i * max(1, chunk_words - overlap_words)
    words = prep(text).split()
    return {"score": round(float(chunk_scores[i]), 6), "words": [start, min(len(words), start + chunk_words)],
            "starts": " ".join(words[start:start + 8])}


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


