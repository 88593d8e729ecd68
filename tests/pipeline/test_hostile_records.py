"""Hostile records for ingest (hypothesis): random bytes, invalid UTF-8, NUL bytes, every Unicode
category, wrong types for every field. Each line ends kept or quarantined with the exact reason an
independent reading of the contract predicts; the run never crashes, the books balance, and every
line has exactly one ledger row and (when quarantined) its raw bytes in the quarantine file.
"""
import base64
import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import reasons as R
from common.io import read_jsonl
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats

MAX_TEXT = 2000
FILE = "in.jsonl"
HYPO = settings(max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "40")), deadline=None,
                derandomize=bool(os.environ.get("CI")), suppress_health_check=[HealthCheck.too_slow])


def expected(lines: list[bytes], max_text: int = MAX_TEXT) -> list[str]:
    """The reason (or "" for kept) of every line, read off docs/contract.md's ingest rules."""
    out, seen = [], set()
    for n, line in enumerate(lines, 1):
        line = line[:-1] if line.endswith(b"\r") else line
        out.append(_reason(n, line, seen, max_text))
    return out


def _reason(n: int, line: bytes, seen: set, max_text: int) -> str:
    if not line.strip():
        return R.INVALID_JSON
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return R.INVALID_UTF8
        return R.INVALID_JSON
    if not isinstance(obj, dict):
        return R.NOT_AN_OBJECT
    own = obj.get("id")
    if own is not None and not ((isinstance(own, str) and own.strip()) or type(own) is int):
        return R.BAD_ID
    text = obj.get("text")
    if text is None:
        return R.MISSING_TEXT
    if not isinstance(text, str):
        return R.TEXT_NOT_STRING
    if len(text.encode("utf-8")) > max_text:
        return R.TEXT_TOO_LARGE
    if not text.strip():
        return R.EMPTY_TEXT
    doc_id = str(own) if own is not None else f"{FILE}:{n}"
    if doc_id in seen:
        return R.DUPLICATE_ID
    seen.add(doc_id)
    return ""


def ingest_lines(lines: list[bytes], **ingest) -> tuple[Path, list[dict]]:
    """Ingest `lines` as one JSONL file in a fresh run; returns (run dir, ledger rows)."""
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    (tmp / FILE).write_bytes(b"\n".join(lines) + b"\n")
    run = tmp / "run"
    run_stages(run, [tmp / FILE], ingest={"max_text_bytes": MAX_TEXT, **ingest})
    return run, ledger_rows(run, "ingest")


def check_accounting(lines: list[bytes], max_text: int = MAX_TEXT) -> list[dict]:
    """Ingest `lines`; assert each line's reason, the books, and the quarantine file. Returns the
    ledger rows, each with the kept document's text under "text" when it was kept."""
    run, rows = ingest_lines(lines, max_text_bytes=max_text)
    try:
        shards = sorted((run / "ingest" / "shards").glob("*.jsonl.zst"))
        for d in (d for s in shards for d in read_jsonl(s)):
            rows[d["meta"]["_src"]["line"] - 1]["text"] = d["text"]
        want = expected(lines, max_text)
        assert len(rows) == len(lines)          # one ledger row per line: nothing unaccounted for
        for n, (row, reason) in enumerate(zip(rows, want), 1):
            assert row["reason"] == reason, (n, lines[n - 1][:200], row)
            if reason:
                assert orjson.loads(row["detail"])["line"] == n and row["id"] == f"{FILE}:{n}"
        st_ = stats(run, "ingest")
        assert_books(st_)
        assert st_["kept"] == want.count("")
        quarantined = list(read_jsonl(run / "ingest" / "quarantine" / "00000.jsonl.zst"))
        assert [q["line"] for q in quarantined] == [n for n, r in enumerate(want, 1) if r]
        for q in quarantined:                   # the raw bytes are kept, so nothing is lost
            raw = q["raw"].encode("utf-8") if "raw" in q else base64.b64decode(q["raw_b64"])
            line = lines[q["line"] - 1]
            assert raw == (line[:-1] if line.endswith(b"\r") else line)
        return rows
    finally:
        shutil.rmtree(run.parent)


def record(**fields) -> bytes:
    return orjson.dumps(fields)


# ---------------------------------------------------------------- random bytes

lines_of = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b""))


@HYPO
@given(st.lists(lines_of, min_size=1, max_size=40))
def test_random_byte_lines_are_each_quarantined_with_the_predicted_reason(lines):
    check_accounting(lines)


# ---------------------------------------------------------------- invalid UTF-8

BAD_UTF8 = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80"]


@HYPO
@given(st.lists(st.tuples(st.text(max_size=50), st.integers(0, 60), st.sampled_from(BAD_UTF8)), min_size=1,
                max_size=20))
def test_invalid_utf8_anywhere_in_a_record_is_quarantined_naming_the_byte(cases):
    lines = []
    for i, (text, at, bad) in enumerate(cases):
        good = record(id=f"u{i}", text=text or "x")
        at = min(at, len(good))
        while at < len(good) and 0x80 <= good[at] <= 0xBF:   # between characters, never inside one
            at += 1
        lines.append(good[:at] + bad + good[at:])
    rows = check_accounting(lines)
    for row, line in zip(rows, lines):
        assert row["reason"] == R.INVALID_UTF8
        start = _first_bad_byte(line)
        assert orjson.loads(row["detail"])["error"] == f"invalid UTF-8 at byte {start}"


def _first_bad_byte(line: bytes) -> int:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start
    raise AssertionError("valid UTF-8")


# ---------------------------------------------------------------- NUL bytes

@HYPO
@given(st.lists(st.tuples(st.text(min_size=1, max_size=40), st.integers(0, 80), st.booleans()), min_size=1,
                max_size=20))
def test_raw_nul_bytes_are_invalid_json_and_escaped_nul_in_text_is_kept(cases):
    lines = []
    for i, (text, at, raw) in enumerate(cases):
        if raw:
            good = record(id=f"n{i}", text=text)
            at = min(at, len(good))
            while at < len(good) and 0x80 <= good[at] <= 0xBF:   # between characters, never inside one
                at += 1
            lines.append(good[:at] + b"\x00" + good[at:])
        else:
            lines.append(record(id=f"n{i}", text="\x00" + text))   # orjson escapes it: \u0000
    rows = check_accounting(lines)
    for (text, _, raw), row in zip(cases, rows):
        if raw:   # outside a string, inside one, inside an escape: never valid JSON
            assert row["reason"] == R.INVALID_JSON
        else:
            assert row["reason"] in ("", R.EMPTY_TEXT)


# ---------------------------------------------------------------- every Unicode category

def _by_category() -> dict[str, list[str]]:
    cats: dict[str, list[str]] = {}
    for cp in range(0x110000):
        cats.setdefault(unicodedata.category(chr(cp)), []).append(chr(cp))
    return cats


CATEGORIES = _by_category()


def _encode(text: str) -> bytes:
    """Raw UTF-8 where possible; lone surrogates can only be written as \\u escapes."""
    return json.dumps({"text": text}, ensure_ascii=any(0xD800 <= ord(c) <= 0xDFFF for c in text)).encode("utf-8")


def test_every_unicode_category_is_kept_nfc_or_quarantined_with_its_reason():
    assert len(CATEGORIES) == 30   # Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp Cc Cf Cs Co Cn
    lines, texts = [], []
    for cat, chars in sorted(CATEGORIES.items()):
        for c in (chars[0], chars[len(chars) // 2], chars[-1]):
            for text in (c, f"a{c}b"):
                lines.append(_encode(text))
                texts.append((cat, text))
    rows = check_accounting(lines)
    for (cat, text), row in zip(texts, rows):
        if cat == "Cs":
            assert row["reason"] == R.INVALID_JSON, (cat, text)   # "\udXXX" alone is not valid JSON here
        elif row["reason"] == "":
            assert row["text"] == unicodedata.normalize("NFC", text), (cat, text)
        else:
            assert row["reason"] == R.EMPTY_TEXT and not text.strip(), (cat, text)


@HYPO
@given(st.lists(st.text(st.characters(codec=None), max_size=60), min_size=1, max_size=30))
def test_random_text_from_all_of_unicode_is_kept_or_quarantined_as_predicted(texts):
    check_accounting([_encode(t) for t in texts])


# ---------------------------------------------------------------- wrong types for every field

WRONG = [None, True, False, 0, -7, 2 ** 70, 1.5, float("1e300"), "", " \t", "s", [], ["a"], {}, {"k": "v"},
         [[{"deep": [1]}]]]


@pytest.mark.parametrize("field", ["id", "text", "source", "meta", "other"])
def test_every_json_type_in_every_field_is_kept_or_quarantined_as_predicted(field):
    lines = []
    for i, v in enumerate(WRONG):
        rec = {"id": f"w{i}", "text": "fine text"}
        rec[field] = v
        lines.append(json.dumps(rec).encode("utf-8"))   # stdlib: writes 2**70 (orjson cannot)
    check_accounting(lines)


@pytest.mark.parametrize("top", [b"[]", b"[1,2]", b'"text"', b"42", b"-1.5e3", b"true", b"null", b"{}"])
def test_a_record_that_is_not_an_object_is_quarantined(top):
    rows = check_accounting([top])
    assert rows[0]["reason"] == (R.MISSING_TEXT if top == b"{}" else R.NOT_AN_OBJECT)


@pytest.mark.parametrize("field,value", [("meta", 5), ("meta", ["a", 1]), ("meta", "note"), ("source", 7),
                                         ("source", ""), ("source", {"url": "u"})])
def test_a_meta_or_source_value_of_the_wrong_type_is_kept_in_meta_not_dropped(field, value):
    rows = check_accounting([json.dumps({"id": "a", "text": "fine text", field: value}).encode()])
    assert rows[0]["reason"] == ""
    run, _ = ingest_lines([json.dumps({"id": "a", "text": "fine text", field: value}).encode()])
    try:
        doc = next(read_jsonl(next((run / "ingest" / "shards").glob("*.jsonl.zst"))))
    finally:
        shutil.rmtree(run.parent)
    assert doc["source"] == FILE                 # the file stands in for an unusable source
    assert doc["meta"][field] == value           # and the value itself is not lost
