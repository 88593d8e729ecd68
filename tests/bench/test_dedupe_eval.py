"""Arithmetic of bench/dedupe_eval.py on a hand-made ground truth (no shared data)."""
import gzip
import json

import pytest

from bench.dedupe_eval import load_ground_truth, score

# 2 exact pairs, 3 near pairs; originals o1..o5 and unrelated docs x1, x2 exist in the "corpus".
GT = {
    "summary": {"n_injected_exact": 2, "n_injected_near": 3},
    "injected": {
        "d1": {"type": "exact", "original_id": "o1", "ops": []},
        "d2": {"type": "exact", "original_id": "o2", "ops": []},
        "d3": {"type": "near", "original_id": "o3", "ops": ["header"], "jaccard_char5": 0.88},
        "d4": {"type": "near", "original_id": "o4", "ops": ["word_edits", "sentence_swap"], "jaccard_char5": 1.0},
        "d5": {"type": "near", "original_id": "o5", "ops": ["footer"], "jaccard_char5": 0.97},
    },
}

# d1: exact pair caught via the copy; o2+d2: exact pair caught, both members removed;
# o3: near pair caught via the original; d4, d5 pairs missed; x1, x2: removals outside any pair.
REMOVED = ["d1", "o2", "d2", "o3", "x1", "x2"]


def test_recall_and_precision():
    s = score(REMOVED, GT)
    assert s["n_removed"] == 6
    assert s["removed_in_pairs"] == 4
    assert s["removed_not_in_pairs"] == 2
    assert s["precision"] == pytest.approx(4 / 6)
    assert s["recall"]["exact"] == pytest.approx(1.0)
    assert s["recall"]["near"] == pytest.approx(1 / 3)
    assert s["recall"]["all"] == pytest.approx(3 / 5)
    assert s["pairs"]["exact"] == {"pairs": 2, "caught": 2, "both_removed": 1}
    assert s["pairs"]["near"] == {"pairs": 3, "caught": 1, "both_removed": 0}
    assert s["pairs"]["all"] == {"pairs": 5, "caught": 3, "both_removed": 1}


def test_breakdowns_of_near_pairs():
    s = score(REMOVED, GT)
    by_op = {op: (v["pairs"], v["recall"]) for op, v in s["near_recall_by_op"].items()}
    assert by_op == {"header": (1, 1.0), "footer": (1, 0.0), "word_edits": (1, 0.0), "sentence_swap": (1, 0.0)}
    by_j = {b: (v["pairs"], v["recall"]) for b, v in s["near_recall_by_jaccard_char5"].items()}
    assert by_j == {"[0.85,0.90)": (1, 1.0), "[0.95,1.00)": (1, 0.0), "[1.00,1.00]": (1, 0.0)}


def test_accepts_injected_mapping_and_counts_repeated_ids_once():
    a = score(REMOVED, GT)
    b = score(REMOVED + ["d1", "x1"], GT["injected"])
    assert a == b


def test_nothing_removed():
    s = score([], GT)
    assert s["precision"] is None
    assert s["recall"] == {"exact": 0.0, "near": 0.0, "all": 0.0}


def test_only_false_positives():
    s = score(["x1", "x2", "x3"], GT)
    assert s["precision"] == 0.0
    assert s["recall"]["all"] == 0.0


def test_universe_restricts_recall_to_pairs_present():
    # d4/o4 and d5/o5 were not fed to the run: recall counts only the 3 pairs that were.
    universe = ["d1", "o1", "d2", "o2", "d3", "o3", "x1", "x2"]
    s = score(REMOVED, GT, universe=universe)
    assert s["pairs"]["near"]["pairs"] == 1
    assert s["recall"]["near"] == pytest.approx(1.0)
    assert s["recall"]["all"] == pytest.approx(1.0)
    assert s["precision"] == pytest.approx(4 / 6)
    assert s["universe_size"] == 8
    assert s["removed_outside_universe"] == 0


def test_unknown_type_is_an_error():
    with pytest.raises(ValueError):
        score([], {"injected": {"d": {"type": "fuzzy", "original_id": "o"}}})


def test_load_ground_truth_gz_and_plain(tmp_path):
    gz = tmp_path / "gt.json.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        json.dump(GT, f)
    plain = tmp_path / "gt.json"
    plain.write_text(json.dumps(GT))
    assert load_ground_truth(gz) == GT
    assert load_ground_truth(plain) == GT
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"summary": {}}))
    with pytest.raises(ValueError):
        load_ground_truth(bad)
