"""Score a dedupe run's removals against the injected duplicates of corpus_dupes.

Dependency-free (stdlib only) so that the benchmark, the peer scripts and the tests can
all use it.

Ground truth (``../shared/data/corpus_dupes/ground_truth.json.gz``) is
``{"summary": {...}, "injected": {id: {"type": "exact"|"near", "original_id", ...}}}``.
Each injected doc forms one *pair* with its original.

* recall    = share of pairs with at least one member removed, given for
              ``exact``, ``near`` and ``all`` (both kinds together);
* precision = share of removed docs that belong to some pair (the removed doc is an
              injected doc or the original of one).  Real text has natural
              near-duplicates too, so this is a lower bound.

``universe`` (optional): the ids that were actually fed to the dedupe run.  With it,
only pairs whose two members are both in it count for recall (for runs on a subset).

CLI:  python3 bench/dedupe_eval.py RESULT.json [--ground-truth PATH] [--out SCORE.json]
where RESULT.json has a ``removed_ids`` list (as written by bench/datatrove_minhash.py).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

DEFAULT_GROUND_TRUTH = Path("../shared/data/corpus_dupes/ground_truth.json.gz")
KINDS = ("exact", "near")
# near-duplicate recall is also broken down by char-5-gram Jaccard of the pair
JACCARD_BINS = ((0.0, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.0), (1.0, 1.0))


def load_ground_truth(path: str | Path = DEFAULT_GROUND_TRUTH) -> dict:
    """Read ground_truth.json(.gz); returns the whole object (with "injected")."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        gt = json.load(f)
    if not isinstance(gt, dict) or not isinstance(gt.get("injected"), dict):
        raise ValueError(f"{path}: not a ground truth file (no 'injected' mapping)")
    return gt


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _jaccard_bin(j: float | None) -> str | None:
    if j is None:
        return None
    for lo, hi in JACCARD_BINS:
        if lo == hi == j or lo <= j < hi:
            return f"[{lo:.2f},{hi:.2f}]" if lo == hi else f"[{lo:.2f},{hi:.2f})"
    return None


def score(removed_ids: Iterable[str], ground_truth: Mapping, universe: Iterable[str] | None = None) -> dict:
    """Recall/precision of ``removed_ids`` against ``ground_truth``.

    ``ground_truth`` is what ``load_ground_truth`` returns, or its ``injected`` mapping.
    Duplicate entries in ``removed_ids`` are counted once.
    """
    inj = ground_truth.get("injected")
    injected: Mapping = inj if isinstance(inj, Mapping) else ground_truth
    removed = set(removed_ids)
    present = set(universe) if universe is not None else None

    pair_members: set[str] = set()
    counts = {k: {"pairs": 0, "caught": 0, "both_removed": 0} for k in (*KINDS, "all")}
    by_op: dict[str, list[int]] = {}
    by_jaccard: dict[str, list[int]] = {}
    for dup_id, info in injected.items():
        orig_id = info["original_id"]
        pair_members.add(dup_id)
        pair_members.add(orig_id)
        if present is not None and (dup_id not in present or orig_id not in present):
            continue
        kind = info["type"]
        if kind not in KINDS:
            raise ValueError(f"injected doc {dup_id}: unknown type {kind!r}")
        hit_dup, hit_orig = dup_id in removed, orig_id in removed
        caught = hit_dup or hit_orig
        for k in (kind, "all"):
            c = counts[k]
            c["pairs"] += 1
            c["caught"] += caught
            c["both_removed"] += hit_dup and hit_orig
        if kind == "near":
            keys = [(by_op, op) for op in info.get("ops", [])]
            jb = _jaccard_bin(info.get("jaccard_char5"))
            if jb is not None:
                keys.append((by_jaccard, jb))
            for table, key in keys:
                slot = table.setdefault(key, [0, 0])
                slot[0] += 1
                slot[1] += caught

    removed_in_pairs = len(removed & pair_members)
    out = {
        "n_removed": len(removed),
        "removed_in_pairs": removed_in_pairs,
        "removed_not_in_pairs": len(removed) - removed_in_pairs,
        "precision": _ratio(removed_in_pairs, len(removed)),
        "recall": {k: _ratio(c["caught"], c["pairs"]) for k, c in counts.items()},
        "pairs": counts,
        "near_recall_by_op": {
            op: {"pairs": n, "recall": _ratio(hit, n)} for op, (n, hit) in sorted(by_op.items())
        },
        "near_recall_by_jaccard_char5": {
            b: {"pairs": n, "recall": _ratio(hit, n)} for b, (n, hit) in sorted(by_jaccard.items())
        },
    }
    if present is not None:
        out["universe_size"] = len(present)
        out["removed_outside_universe"] = len(removed - present)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="score a dedupe result's removed_ids against the ground truth")
    ap.add_argument("result", help="JSON with a 'removed_ids' list")
    ap.add_argument("--ground-truth", default=str(DEFAULT_GROUND_TRUTH))
    ap.add_argument("--out", help="write the score JSON here (default: stdout)")
    args = ap.parse_args(argv)
    result = json.loads(Path(args.result).read_text())
    s = score(result["removed_ids"], load_ground_truth(args.ground_truth))
    s["tool"] = result.get("tool")
    text = json.dumps(s, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
