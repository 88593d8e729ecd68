"""The CBRN filter record: what the tokenize manifest says about the filter its data passed, and the
checks the trainer makes before it believes it. One module, so writer and reader cannot drift.

A record (`manifest.json["filter"]`) holds the filter's fingerprint (lexicon, model and policy sha256,
the policy with its thresholds) and the sha256 of the cbrn stage's `stats.json` and of every ledger
file, so a record typed by hand, copied from another run or left after the filter's outputs changed
does not pass: `check` names the first field that is missing, malformed or disagrees with the cbrn
stage's files (when they sit beside the tokenize directory, as in a run directory).
"""
from __future__ import annotations

import re
from pathlib import Path

from common.io import read_json, sha256_bytes, sha256_file

STAGE = "cbrn"
LEDGER_DIR = "ledger"
FINGERPRINT = ("lexicon_sha256", "lexicon_version", "model_sha256", "threshold", "policy", "policy_sha256")
REQUIRED = ("stage", *FINGERPRINT, "stats_sha256", "ledgers")
_SHA = re.compile(r"^[0-9a-f]{64}$")


class FilterRecordError(ValueError):
    """A filter record that is missing a field, malformed, or disagrees with the filter's files."""


def _canonical(value):
    """Nested dicts as sorted item lists and tuples as lists, so the digest survives a JSON round trip
    (a flat policy gives exactly its sorted items, as before)."""
    if isinstance(value, dict):
        return sorted((k, _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def policy_sha256(policy: dict) -> str:
    """The digest of a filter policy (key order does not matter, at any depth)."""
    return sha256_bytes(repr(_canonical(policy)).encode())


def build(fingerprint: dict, stage_dir: str | Path, ledger_sha256: dict[str, str] | None = None) -> dict:
    """The record of data that passed the cbrn stage in `stage_dir`: its fingerprint plus the sha256 of
    its stats.json and ledgers. `ledger_sha256` ({path relative to stage_dir: sha256}, e.g. from the
    stage's completion markers) saves hashing the ledgers again; missing ones are hashed here."""
    stage_dir = Path(stage_dir)
    ledgers = {}
    for path in sorted((stage_dir / LEDGER_DIR).glob("*.parquet")):
        rel = f"{LEDGER_DIR}/{path.name}"
        ledgers[rel] = (ledger_sha256 or {}).get(rel) or sha256_file(path)
    return {"stage": STAGE, **{k: fingerprint[k] for k in FINGERPRINT},
            "stats_sha256": sha256_file(stage_dir / "stats.json"), "ledgers": ledgers}


def check(record, *, where: str, stage_dir: str | Path | None = None) -> str:
    """Raise FilterRecordError naming the first bad field of `record` (`where` names the manifest).
    With `stage_dir` (the cbrn stage directory, when present) the record must also match its files.
    Returns a one-line account of what was verified."""
    def fail(field: str, why: str) -> None:
        raise FilterRecordError(f"{where}: filter.{field}: {why}")

    if not isinstance(record, dict):
        raise FilterRecordError(f"{where}: filter: expected the cbrn stage's record (an object), got {record!r}")
    for key in REQUIRED:
        if key not in record or record[key] is None:
            fail(key, "missing (the record was not written by the tokenize stage after a cbrn stage)")
    if record["stage"] != STAGE:
        fail("stage", f"expected {STAGE!r}, got {record['stage']!r}")
    for key in ("lexicon_sha256", "model_sha256", "policy_sha256", "stats_sha256"):
        if not isinstance(record[key], str) or not _SHA.match(record[key]):
            fail(key, f"expected a sha256 (64 hex digits), got {record[key]!r}")
    policy = record["policy"]
    if not isinstance(policy, dict) or not policy:
        fail("policy", f"expected the filter policy (a non-empty object), got {policy!r}")
    if policy_sha256(policy) != record["policy_sha256"]:
        fail("policy_sha256", f"does not match filter.policy (its sha256 is {policy_sha256(policy)}): the "
                              f"policy or its thresholds were changed after the filter ran")
    threshold = record["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold != policy.get("threshold"):
        fail("threshold", f"{threshold!r} differs from filter.policy.threshold {policy.get('threshold')!r}")
    ledgers = record["ledgers"]
    if not isinstance(ledgers, dict) or not ledgers:
        fail("ledgers", "expected {ledger file: sha256} of the cbrn stage, got " + repr(ledgers)[:80])
    for rel, digest in ledgers.items():
        if not isinstance(digest, str) or not _SHA.match(digest):
            fail(f"ledgers[{rel!r}]", f"expected a sha256, got {digest!r}")
        if not re.match(rf"^{LEDGER_DIR}/[^/]+\.parquet$", str(rel)):
            fail(f"ledgers[{rel!r}]", f"not a {LEDGER_DIR}/*.parquet file name")
    if stage_dir is None or not Path(stage_dir).is_dir():
        return "record complete; cbrn stage files not present here, so not compared"

    stage_dir = Path(stage_dir)
    stats_path = stage_dir / "stats.json"
    if not stats_path.is_file():
        fail("stats_sha256", f"{stats_path} is missing")
    actual = sha256_file(stats_path)
    if actual != record["stats_sha256"]:
        fail("stats_sha256", f"{record['stats_sha256']} but {stats_path} has sha256 {actual}")
    recorded = read_json(stats_path).get("filter") or {}
    for key in ("lexicon_sha256", "model_sha256", "policy_sha256", "threshold"):
        if recorded.get(key) != record[key]:
            fail(key, f"{record[key]!r} but {stats_path} records {recorded.get(key)!r}")
    present = {f"{LEDGER_DIR}/{p.name}" for p in (stage_dir / LEDGER_DIR).glob("*.parquet")}
    for rel in sorted(present ^ set(ledgers)):
        why = "listed but missing from" if rel in ledgers else "not listed, yet present in"
        fail(f"ledgers[{rel!r}]", f"{why} {stage_dir / LEDGER_DIR}")
    for rel, digest in sorted(ledgers.items()):
        actual = sha256_file(stage_dir / rel)
        if actual != digest:
            fail(f"ledgers[{rel!r}]", f"{digest} but {stage_dir / rel} has sha256 {actual}")
    return f"record matches {stats_path} and {len(ledgers)} ledger files"
