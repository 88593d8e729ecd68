"""[cbrn] config section: the filter's policy, with embedded defaults (SECTIONS["cbrn"])."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.config import ConfigError
from filters.evidence import GENERIC_TERMS

LEVELS = ("narrow", "balanced", "broad")  # cbrn.policy; what each removes: filters.decide.LEVEL_TEXT


@dataclass(kw_only=True)
class CbrnConfig:
    policy: str = "balanced"           # narrow | balanced | broad: what each removes is in filters.decide.LEVEL_TEXT;
                                       # thresholds per level from CV on the training data (model metadata)
    lexicon_path: str = ""             # "" = the shipped filters/lexicon/cbrn_lexicon.json
    model_path: str = ""               # "" = the shipped filters/models/cbrn_default.ftz
    threshold: float | None = None     # for escalated documents; None = the model's calibrated threshold
    threshold_strong: float | None = None  # for documents with >= strong_min_terms terms; None = calibrated
                                       # (or `threshold` when that is set)
    threshold_without_terms: float | None = None  # for the rest; None = calibrated (never below `threshold`)
    escalate_min_terms: int = 1        # distinct lexicon terms that escalate (1 chosen by CV on train: 2 lost ~10 pts recall)
    strong_min_terms: int = 2          # distinct terms for the lower `threshold_strong` (CV on train: recall .982 vs .963)
    score_without_terms: bool = True   # score documents with no term too (paraphrases are no free pass) ...
    min_words_without_terms: int = 40  # ... when they have at least this many words: a bag-of-n-grams score of a
                                       # short text (a dictionary entry, a one-liner) is noise, not evidence ...
    no_term_min_domain_words: int = 1  # ... and use this many distinct words of the field (filters/evidence.py
                                       # DOMAIN_WORDS): a kernel struct listing scoring 0.9998 is noise too
                                       # (2 would also skip 26 of the 88 labeled no-term positives, 1 skips 8)
    chunk_words: int = 150             # classifier window (about a training document); removed if any window passes
    chunk_overlap_words: int = 40
    term_window_words: int = 40        # long escalated documents: also score +-N words around each term
    max_term_windows: int = 8
    blocklist_min_high_terms: int = 3  # blocklist-only removal: distinct Tier-1 / Schedule-1 terms ...
    blocklist_min_density: float = 2.0  # ... and their occurrences per 100 words
    evidence_obfuscated: bool = True   # a term found only through a spelling trick counts as strong evidence ...
    context_min_cues: int = 2          # ... and so do this many distinct hazard/regulatory context words ...
    context_words: int = 12            # ... within this many words of a term (filters/evidence.py)
    # lexicon terms that escalate only with hazard context (element names, category words: filters/evidence.py)
    generic_terms: list[str] = field(default_factory=lambda: list(GENERIC_TERMS))
    # ... and terms that, named once with no other term and no hazard context, count as a mention in passing
    # (off by default; filters.evidence.PASSING_TERMS_PRECISION is a measured alternative: fewer removals
    # of ordinary text, lower recall)
    passing_terms: list[str] = field(default_factory=list)
    context_window: int = 8            # tokens either side where a context-only alias needs a cue word
    snippet_words: int = 8             # words of context per match in the ledger detail (at most 8)
    max_terms_in_detail: int = 20
    max_snippets_per_term: int = 2
    keep_removed_text: bool = False    # removed documents keep id, sha256, source; the text only if true
    batch_size: int = 256
    # the audit report (`python -m filters.audit`); read by filters/audit only, not by the filter
    audit_labeled: str = ""            # labeled JSONL ({"text","label"}) to evaluate the run's filter on; "" = none
    audit_sample: int = 20             # removed documents (and hard negatives) listed in the report

    def validate(self) -> None:
        if self.policy not in LEVELS:
            import difflib
            near = difflib.get_close_matches(str(self.policy), LEVELS, n=1)
            raise ConfigError(f"cbrn.policy: expected one of {', '.join(LEVELS)}, got {self.policy!r}"
                              + (f" (did you mean {near[0]!r}?)" if near else ""))
        for key in ("threshold", "threshold_strong", "threshold_without_terms"):
            v = getattr(self, key)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ConfigError(f"cbrn.{key}: must be between 0 and 1, got {v}")
        if self.strong_min_terms < self.escalate_min_terms:
            raise ConfigError(f"cbrn.strong_min_terms: must be >= escalate_min_terms ({self.escalate_min_terms}), "
                              f"got {self.strong_min_terms}")
        for key in ("escalate_min_terms", "strong_min_terms", "chunk_words", "blocklist_min_high_terms", "context_window",
                    "max_terms_in_detail", "batch_size", "term_window_words"):
            if getattr(self, key) < 1:
                raise ConfigError(f"cbrn.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("context_min_cues", "context_words", "chunk_overlap_words", "max_snippets_per_term", "max_term_windows", "min_words_without_terms",
                    "no_term_min_domain_words"):
            if getattr(self, key) < 0:
                raise ConfigError(f"cbrn.{key}: must be >= 0, got {getattr(self, key)}")
        if self.chunk_overlap_words >= self.chunk_words:
            raise ConfigError(f"cbrn.chunk_overlap_words: must be < chunk_words ({self.chunk_words}), "
                              f"got {self.chunk_overlap_words}")
        if not 0 <= self.snippet_words <= 8:
            raise ConfigError(f"cbrn.snippet_words: must be between 0 and 8, got {self.snippet_words}")
        if self.audit_sample < 0:
            raise ConfigError(f"cbrn.audit_sample: must be >= 0, got {self.audit_sample}")
        if self.blocklist_min_density < 0:
            raise ConfigError(f"cbrn.blocklist_min_density: must be >= 0, got {self.blocklist_min_density}")
