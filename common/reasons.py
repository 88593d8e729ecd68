"""The one registry of ledger decisions and reasons. Every stage and test imports these constants.

A ledger row's `reason` is empty when the document was kept, else one of the constants below.
Adding a reason: add the constant, put it in REMOVED or QUARANTINED, and document it in docs/contract.md.
"""

KEPT = "kept"
REMOVED = "removed"
QUARANTINED = "quarantined"
DECISIONS = (KEPT, REMOVED, QUARANTINED)

# --- ingest: bad records are quarantined (nothing lost: the raw record goes to ingest/quarantine/)
INVALID_JSON = "invalid_json"
INVALID_UTF8 = "invalid_utf8"
NOT_AN_OBJECT = "not_an_object"          # valid JSON, but not a {...} record
MISSING_TEXT = "missing_text"
TEXT_NOT_STRING = "text_not_string"
EMPTY_TEXT = "empty_text"                # empty or whitespace-only
TEXT_TOO_LARGE = "text_too_large"        # over ingest.max_text_bytes (UTF-8 bytes)
BAD_ID = "bad_id"                        # id field present but not a non-empty string/integer
DUPLICATE_ID = "duplicate_id"            # id already used by an earlier record
TRUNCATED_INPUT = "truncated_input"      # compressed stream ended mid-way; the partial tail
UNREADABLE_INPUT = "unreadable_input"    # a whole file/dataset could not be opened or decoded

# --- dedupe: removed
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"

# --- cbrn: removed, or quarantined when the filter itself failed (fail closed)
CBRN_CLASSIFIER = "cbrn_classifier"
CBRN_BLOCKLIST = "cbrn_blocklist"
CBRN_ERROR = "cbrn_error"

# --- tokenize
TOKENIZE_ERROR = "tokenize_error"

REMOVED_REASONS = frozenset({EXACT_DUPLICATE, NEAR_DUPLICATE, CBRN_CLASSIFIER, CBRN_BLOCKLIST})
QUARANTINE_REASONS = frozenset({
    INVALID_JSON, INVALID_UTF8, NOT_AN_OBJECT, MISSING_TEXT, TEXT_NOT_STRING, EMPTY_TEXT,
    TEXT_TOO_LARGE, BAD_ID, DUPLICATE_ID, TRUNCATED_INPUT, UNREADABLE_INPUT, CBRN_ERROR,
    TOKENIZE_ERROR,
})
ALL_REASONS = REMOVED_REASONS | QUARANTINE_REASONS


def check(decision: str, reason: str) -> None:
    """Raise if a (decision, reason) pair is not in the registry."""
    if decision == KEPT:
        if reason:
            raise ValueError(f"kept rows carry no reason, got {reason!r}")
    elif decision == REMOVED:
        if reason not in REMOVED_REASONS:
            raise ValueError(f"unknown removal reason {reason!r}")
    elif decision == QUARANTINED:
        if reason not in QUARANTINE_REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
    else:
        raise ValueError(f"unknown decision {decision!r}")
