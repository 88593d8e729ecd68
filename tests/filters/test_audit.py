"""The audit report on a real run (ingest, dedupe and the cbrn stage over the repo's own encyclopedia-level
texts): files, numbers equal to the ledgers, short context only, escaping, determinism, partial runs."""
from __future__ import annotations

import html.parser
import re
import shutil

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from common import reasons as R
from common.io import read_json
from filters.audit import REPORT_FILES, AuditFailed, build_report, run_audit_stage
from filters.audit.collect import _books
from filters.audit.snippets import MATCH_CHARS, SNIPPET_CHARS, SNIPPET_WORDS, WITHHELD, clip
from filters.config import CbrnConfig
from filters.data import read_extra
from pipeline.ledger import SCHEMA, books_from_ledger
from pipeline.context import load_run_context
from tests.conftest import run_cli
from tests.pipeline.helpers import ledger_rows, run_stages, write_jsonl

# Written for this test, encyclopedia level; the id and the markup check the report's escaping.
ODD_ID = '<script>alert("id")</script>&x'
ODD_TEXT = ("<b>Sarin</b> is a nerve agent listed in Schedule 1 of the Chemical Weapons Convention & its "
            "annex; the Organisation for the Prohibition of Chemical Weapons verifies that stockpiles are destroyed.")


def _inputs(tmp):
    rows = read_extra()
    recs = [{"id": f"doc-{i:03d}", "text": r["text"]} for i, r in enumerate(rows)]
    recs += [{"id": "dup-of-000", "text": rows[0]["text"]}, {"id": ODD_ID, "text": ODD_TEXT}]
    return write_jsonl(tmp / "docs.jsonl", recs), rows


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audit")
    src, _ = _inputs(tmp)
    run_dir = tmp / "run"
    run_stages(run_dir, [src], stages=("ingest", "dedupe", "cbrn"))
    audit = build_report(run_dir, CbrnConfig(), sample=1000)
    return run_dir, audit


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    shutil.rmtree(dst / "audit")
    return dst


def _snippets(audit):
    for row in audit["cbrn"]["sample"] + audit["cbrn"]["hard_negatives"]:
        for t in row["terms"]:
            yield from t["context"]


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.img_src, self.text = set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.img_src.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(html_text):
    p = _Tags()
    p.feed(html_text)
    return p


# ---------------------------------------------------------------- files and numbers

def test_report_files_exist_and_the_html_is_self_contained(run):
    run_dir, audit = run
    out = run_dir / "audit"
    for name in REPORT_FILES + ("timing.json",):
        assert (out / name).is_file(), name
    assert set(audit["plots"]) >= {"funnel", "removals", "scores", "terms", "lists"}
    page = (out / "report.html").read_text(encoding="utf-8")
    tags = _parse(page)
    assert len(tags.img_src) == len(audit["plots"])
    assert all(s.startswith("data:image/png;base64,") for s in tags.img_src)
    assert "http://" not in page and "https://" not in page and "<link" not in page
    md = (out / "report.md").read_text(encoding="utf-8")
    for f in audit["plots"].values():
        assert f"]({f})" in md and (out / f).is_file()


def test_numbers_equal_the_ledger_and_stats(run):
    run_dir, audit = run
    assert audit["ok"], audit["problems"]
    for stage in ("ingest", "dedupe", "cbrn"):
        a = audit["stages"][stage]
        recount = _books(books_from_ledger(run_dir / stage).to_dict())
        assert a["ledger"] == recount == a["stats"] == _books(read_json(run_dir / stage / "stats.json"))
        assert a["ledger_matches_stats"] and a["ledger_balanced"] and a["stats_balanced"]
    assert audit["stages"]["dedupe"]["stats"]["removed"] == {R.EXACT_DUPLICATE: 1}
    assert audit["stages"]["tokenize"]["status"] == "not run"
    rows = ledger_rows(run_dir, "cbrn")
    removed = [r for r in rows if r["decision"] == R.REMOVED]
    hard = [r for r in rows if r["decision"] == R.KEPT and orjson.loads(r["detail"]).get("terms")]
    c = audit["cbrn"]
    assert c["counts"]["removed"] == len(removed) > 30 and len(c["sample"]) == len(removed)
    assert c["counts"]["kept_with_terms"] == len(hard) >= 1 and len(c["hard_negatives"]) == len(hard)
    st = read_json(run_dir / "cbrn" / "stats.json")
    for key in ("scores", "terms", "lists", "kept_terms", "filter"):
        assert c[key] == st[key]          # copied from stats.json, never recomputed
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    s = audit["stages"]["cbrn"]["stats"]
    assert (f'<tr><td class="nw">cbrn</td><td class="nw">complete</td><td class="nw">{s["in"]:,}</td>'
            f'<td class="nw">{s["kept"]:,}</td>') in page


def test_reproducibility_hashes(run):
    run_dir, audit = run
    h = audit["hashes"]
    assert len(h["config"]["sha256"]) == 64
    assert h["lexicon"]["sha256"] == h["lexicon"]["recorded"] and h["model"]["sha256"] == h["model"]["recorded"]
    assert [i["path"] for i in h["inputs"]] == [i["path"] for i in read_json(run_dir / "ingest" / "inputs.json")]
    assert all(len(i["sha256"]) == 64 for i in h["inputs"])
    files = h["stages"]["cbrn"]["file_list"]
    assert any(f["path"].startswith("cbrn/ledger/") for f in files)
    assert any(f["path"] == "cbrn/stats.json" for f in files)
    assert not any("/logs/" in f["path"] or "/_tasks/" in f["path"] or f["path"].endswith("timing.json") for f in files)


# ---------------------------------------------------------------- short context only

def test_snippets_from_the_filter_pass_unchanged_and_are_bounded(run):
    run_dir, audit = run
    for r in ledger_rows(run_dir, "cbrn"):
        for t in orjson.loads(r["detail"]).get("terms", []):
            for ctx in t["context"]:
                assert clip(ctx, [t["term"], *t["aliases"]]) == ctx     # the audit does not mangle good ones
    snips = list(_snippets(audit))
    assert len(snips) > 50
    for s in snips:
        assert len(s.split()) <= 2 * SNIPPET_WORDS + 12 and len(s) <= 2 * SNIPPET_CHARS + MATCH_CHARS + 2, s


def _merge_letter_runs(words: list[str]) -> list[str]:
    """A name spelled letter by letter ("i r i d i u m - 1 9 2") is one match, shown whole in its
    brackets: count it as one word, as the snippet rule does."""
    out: list[str] = []
    run: list[str] = []
    for w in words + [""]:
        if len(w) == 1:
            run.append(w)
            continue
        out += [" ".join(run)] if len(run) >= 3 else run
        run = []
        if w:
            out.append(w)
    return out


def test_no_run_of_words_from_a_removed_document_beyond_the_limit(run):
    run_dir, audit = run
    texts = {r["id"]: r["text"] for r in map(orjson.loads, (run_dir.parent / "docs.jsonl").read_bytes().splitlines())}
    removed = [texts[r["id"]] for r in ledger_rows(run_dir, "cbrn") if r["decision"] == R.REMOVED]
    page = "\n".join(_parse((run_dir / "audit" / "report.html").read_text(encoding="utf-8")).text)
    md = (run_dir / "audit" / "report.md").read_text(encoding="utf-8")
    js = (run_dir / "audit" / "audit.json").read_text(encoding="utf-8")
    n = SNIPPET_WORDS + 1
    for text in removed:
        words = _merge_letter_runs(text.split())
        for i in range(len(words) - n + 1):
            window = " ".join(words[i:i + n])
            assert window not in page and window not in md and window not in js, window


def test_clip_enforces_the_bound_on_a_tampered_ledger():
    long_left = " ".join(f"left{i}" for i in range(200))
    long_right = " ".join(f"right{i}" for i in range(200))
    out = clip(f"{long_left} [Sarin] {long_right}")
    assert out == " ".join([f"left{i}" for i in range(192, 200)] + ["[Sarin]"] + [f"right{i}" for i in range(8)])
    assert clip("no brackets at all " * 30) == WITHHELD
    assert clip("[" + "x" * 500 + "]") == WITHHELD                  # not a name: withheld, not shown
    assert clip("see [1] and the [Chemical Weapons Convention] text", ["Chemical Weapons Convention"]) \
        == "see [1] and the [Chemical Weapons Convention] text"
    assert clip("a b [s a r i n] c d").startswith("a b [s a r i n]")  # a letter-split match stays whole
    assert len(clip("w" * 300 + " [VX] " + "z" * 300)) <= MATCH_CHARS


def _tamper_ledger(run_dir, doc_id, edit):
    """Rewrite one row's detail in place (the books stay equal: only the detail changes)."""
    for f in sorted((run_dir / "cbrn" / "ledger").glob("*.parquet")):
        t = pq.read_table(f, schema=SCHEMA)
        rows = t.to_pylist()
        if any(r["id"] == doc_id for r in rows):
            for r in rows:
                if r["id"] == doc_id:
                    d = orjson.loads(r["detail"])
                    edit(d)
                    r["detail"] = orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), f)
            return
    raise AssertionError(doc_id)


def test_a_long_excerpt_or_markup_in_the_ledger_never_reaches_the_report(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    victim = next(r["id"] for r in ledger_rows(run_dir, "cbrn") if r["decision"] == R.REMOVED)
    excerpt = " ".join(f"secretword{i}" for i in range(300))

    def edit(d):
        d["terms"][0]["context"] = [f"{excerpt} [{d['terms'][0]['term']}] {excerpt}", excerpt,
                                    "a | b `c` [x|y] d | e"]
        d["terms"][0]["term"] = '<img src=x onerror="alert(1)">'
    _tamper_ledger(run_dir, victim, edit)
    audit = build_report(run_dir, CbrnConfig(), sample=1000)
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    md = (run_dir / "audit" / "report.md").read_text(encoding="utf-8")
    js = (run_dir / "audit" / "audit.json").read_text(encoding="utf-8")
    for doc in (page, md, js):
        shown = [i for i in range(300) if f"secretword{i} " in doc or f"secretword{i}\"" in doc]
        assert 0 < len(shown) <= 2 * SNIPPET_WORDS and shown[0] == 0 and shown[-1] == 299, shown
    assert WITHHELD in page
    assert len(_parse(page).img_src) == len(audit["plots"])       # the term became text, not a tag
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "\\<img src=x" in md and not re.search(r"(?<!\\)<img", md)          # Markdown: escaped, inert
    _check_markdown(md)


def _check_markdown(md):
    """Rendered as CommonMark + tables: no tag from the run's strings, and '|' never splits a cell."""
    from markdown_it import MarkdownIt
    out = MarkdownIt("commonmark").enable("table").render(md)
    assert set(re.findall(r"<(\w+)", out)) <= {"h1", "h2", "h3", "h4", "p", "table", "thead", "tbody", "tr", "th", "td",
                                               "code", "strong", "img", "ul", "li"}
    assert len(re.findall(r"<img ", out)) == md.count("![")
    for table in re.findall(r"<table>.*?</table>", out, re.S):
        head = table.count("<th>")
        assert all(row.count("<td>") == head for row in re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S))


def test_html_escaping_of_ids_and_document_markup(run):
    run_dir, audit = run
    assert any(r["id"] == ODD_ID for r in audit["cbrn"]["sample"])
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    tags = _parse(page)
    assert "script" not in tags.tags and "b" not in tags.tags
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&amp;x" in page
    assert "&lt;b&gt; <mark>[Sarin]</mark> &lt;/b&gt;" in page
    md = (run_dir / "audit" / "report.md").read_text(encoding="utf-8")
    prose = re.sub(r"`[^`]*`", "", md)      # code spans show markup literally (snippets are code spans)
    assert not re.search(r"(?<!\\)<(script|b)>", prose) and "\\<script\\>" in prose
    assert "`<b> [Sarin] </b>" in md
    _check_markdown(md)


# ---------------------------------------------------------------- determinism, partial runs, failures

def test_same_run_dir_gives_the_same_bytes_even_moved(run, tmp_path):
    run_dir, _ = run
    before = {p.name: p.read_bytes() for p in (run_dir / "audit").iterdir() if p.name != "timing.json"}
    build_report(run_dir, CbrnConfig(), sample=1000)
    again = {p.name: p.read_bytes() for p in (run_dir / "audit").iterdir() if p.name != "timing.json"}
    assert before == again
    moved = tmp_path / "elsewhere" / run_dir.name
    shutil.copytree(run_dir, moved)
    build_report(moved, CbrnConfig(), sample=1000)
    assert {p.name: p.read_bytes() for p in (moved / "audit").iterdir() if p.name != "timing.json"} == before


def test_partial_run_says_what_is_missing(tmp_path):
    src, _ = _inputs(tmp_path)
    run_dir = tmp_path / "run"
    run_stages(run_dir, [src], stages=("ingest",))
    audit = build_report(run_dir, CbrnConfig())
    assert audit["ok"], audit["problems"]
    assert [audit["stages"][s]["status"] for s in ("ingest", "dedupe", "cbrn", "tokenize")] == \
        ["complete", "not run", "not run", "not run"]
    assert audit["cbrn"] == {"present": False} and set(audit["plots"]) == {"funnel"}
    for name in ("report.html", "report.md"):
        text = (run_dir / "audit" / name).read_text(encoding="utf-8")
        assert "The cbrn stage has not run" in text and "not run (no stats.json, no ledger)" in text


def test_books_mismatch_is_flagged_loudly(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    st = read_json(run_dir / "dedupe" / "stats.json")
    st["in"] += 1
    st["kept"] += 1                        # balanced on its own, but not what the ledger says
    (run_dir / "dedupe" / "stats.json").write_bytes(orjson.dumps(st))
    audit = build_report(run_dir, CbrnConfig())
    assert not audit["ok"]
    assert any("dedupe: BOOKS MISMATCH" in p for p in audit["problems"])
    assert any(p.startswith("cbrn: received") for p in audit["problems"])   # dedupe "kept" one more than cbrn got
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    assert page.index("CHECKS FAILED") < page.index("1. Accounting") and 'class="flag">MISMATCH' in page


def test_an_unfinished_stage_is_reported_from_its_ledger(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    (run_dir / "cbrn" / "stats.json").unlink()
    audit = build_report(run_dir, CbrnConfig())
    assert audit["stages"]["cbrn"]["status"] == "incomplete" and not audit["ok"]
    assert audit["cbrn"]["present"] and not audit["cbrn"]["complete"] and audit["cbrn"]["counts"]["removed"] > 0


def test_pipeline_stage_writes_the_report_and_fails_after_writing_it(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    summary = run_audit_stage(load_run_context(run_dir))
    assert summary["ok"] and summary["report"].endswith("audit/report.html")
    (run_dir / "ingest" / "ledger" / "00000.parquet").unlink()
    with pytest.raises(AuditFailed, match="ingest: BOOKS MISMATCH"):
        run_audit_stage(load_run_context(run_dir))
    assert "CHECKS FAILED" in (run_dir / "audit" / "report.html").read_text(encoding="utf-8")


def test_evaluation_on_a_labeled_set_without_showing_its_texts(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    rows = read_extra()
    pick = [r for r in rows if r["label"] == 1][:6] + [r for r in rows if r["label"] == 0][:6]
    labeled = write_jsonl(tmp_path / "labeled.jsonl", [{"text": r["text"], "label": r["label"]} for r in pick])
    audit = build_report(run_dir, CbrnConfig(), labeled=str(labeled))
    ev = audit["evaluation"]
    assert ev["n"] == 12 and ev["tp"] + ev["fn"] == 6 and ev["fp"] + ev["tn"] == 6
    assert 0 <= ev["recall"] <= 1 and 0 <= ev["fpr"] <= 1 and ev["fingerprint_matches_run"]
    # the policy's own point on its ROC curve (remove when score / threshold >= 1) is the recall and FPR
    # the report states
    roc = ev["curves"]["policy_margin"]
    at = max(i for i, t in enumerate(roc["thresholds"]) if t >= 1) if any(t >= 1 for t in roc["thresholds"]) else None
    assert (roc["tpr"][at], roc["fpr"][at]) == (ev["recall"], ev["fpr"]) if at is not None else ev["tp"] + ev["fp"] == 0
    assert (run_dir / "audit" / "evaluation.png").is_file() and "evaluation" in audit["plots"]
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    assert f"<td class=\"nw\">recall</td><td class=\"nw\">{ev['recall']:.4f}</td>" in page
    assert all(r["text"][:60] not in page for r in pick)
    # re-running the audit without --labeled evaluates the same file again instead of dropping it
    again = build_report(run_dir, CbrnConfig())
    assert again["evaluation"]["data"] == str(labeled) and again["evaluation"]["tp"] == ev["tp"]
    # an explicit opt-out drops it, and its plot does not linger
    build_report(run_dir, CbrnConfig(), keep_earlier=False)
    assert not (run_dir / "audit" / "evaluation.png").exists()
    # a labeled set that is gone is not silently forgotten: the report says which and why
    build_report(run_dir, CbrnConfig(), labeled=str(labeled))
    labeled.unlink()
    gone = build_report(run_dir, CbrnConfig())
    assert gone["evaluation"] is None and gone["earlier_evaluation"] == {"data": str(labeled),
                                                                       "why": "the file is no longer there"}
    assert "NOT EVALUATED AGAIN" in (run_dir / "audit" / "report.md").read_text(encoding="utf-8")


def test_cli_exit_codes(run, tmp_path):
    run_dir = _copy(run[0], tmp_path)
    assert run_cli("-m", "filters.audit", tmp_path / "nope", check=False).returncode == 2
    (run_dir / "cbrn" / "ledger" / sorted(p.name for p in (run_dir / "cbrn" / "ledger").iterdir())[0]).unlink()
    proc = run_cli("-m", "filters.audit", run_dir, "--sample", "3", check=False)
    assert proc.returncode == 1 and "BOOKS MISMATCH" in proc.stderr
    assert proc.stdout.strip().endswith("audit/report.html")      # written all the same
    assert len(read_json(run_dir / "audit" / "audit.json")["cbrn"]["sample"]) <= 3


def test_roc_and_pr_points_by_hand():
    """The evaluation's curves on four scores worked out by hand (ties share one point)."""
    import numpy as np
    from filters.evaluate import curves
    c = curves(np.array([0.9, 0.8, 0.8, 0.3]), np.array([1, 0, 1, 0]))
    assert c["thresholds"] == [0.9, 0.8, 0.3]
    assert c["tpr"] == [0.5, 1.0, 1.0] and c["fpr"] == [0.0, 0.5, 1.0]
    assert c["precision"] == pytest.approx([1.0, 2 / 3, 0.5])
    assert c["roc_auc"] == pytest.approx(0.5 * 0.75 + 0.5 * 1.0)  # (0,0)-(0,.5)-(.5,1)-(1,1)


def test_policy_levels_table_counts_what_each_level_removes_from_the_ledger(run):
    """Every decision records the levels that remove it: the audit's per-level counts equal a recount of
    the ledger, the run's own level equals its removals, the levels nest, and the report shows them."""
    run_dir, audit = run
    rows = ledger_rows(run_dir, "cbrn")
    want: dict[str, dict] = {}
    for r in rows:
        det = orjson.loads(r["detail"]) if r["detail"] != "{}" else {}
        levels = det.get("levels") or {}
        if r["decision"] == R.REMOVED:
            assert levels.get("balanced") == r["reason"], r["id"]  # the run's level, with the same reason
        else:
            assert "balanced" not in levels, r["id"]
        for name, why in levels.items():
            w = want.setdefault(name, {"removed": 0, "by_reason": {}})
            w["removed"] += 1
            w["by_reason"][why] = w["by_reason"].get(why, 0) + 1
    got = {k: {"removed": v["removed"], "by_reason": v["by_reason"]} for k, v in audit["cbrn"]["levels"].items()}
    assert got == want
    n_removed = sum(r["decision"] == R.REMOVED for r in rows)
    assert got["balanced"]["removed"] == n_removed
    assert got.get("narrow", {"removed": 0})["removed"] <= n_removed <= got["broad"]["removed"]
    assert sum(audit["cbrn"]["levels"]["balanced"]["by_source"].values()) == n_removed
    page = (run_dir / "audit" / "report.html").read_text(encoding="utf-8")
    assert "Policy levels: what each would remove in this run" in page and "balanced (this run)" in page


def test_clip_finds_a_disguised_match_among_the_documents_own_brackets():
    """A document's own brackets ("[chat]") come first, the match is a disguised spelling: the clip
    centres on the match (found through the matcher's folding), not on the first bracket."""
    s = "[chat] mia: did u see the [e-b-o-l-a] outbreak news from the north this morning"
    assert clip(s, ["Ebolavirus", "Ebola"]) == s
    assert clip("[1] the [r1c1n] letters case", ["Ricin"]) == "[1] the [r1c1n] letters case"
    assert clip("[1] the [s\u0430rin] attack", ["Sarin"]).startswith("[1] the [s\u0430rin]")


def test_removals_by_input_file_and_by_source(tmp_path):
    """Per input file: read at ingest, each stage's drops by reason (from the ledger details) and what is
    left; the same drops by the records' source field; the numbers add up to the stages' books."""
    texts = [r["text"] for r in read_extra() if r["label"] == 0]     # ordinary text: kept by the filter
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "a0", "text": texts[0], "source": "wiki"},
                                           {"id": "a1", "text": ODD_TEXT, "source": "wiki"}, b"{broken"])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "b0", "text": texts[0], "source": "news"},
                                           {"id": "b1", "text": texts[1], "source": "news"}])
    run_dir = tmp_path / "run"
    run_stages(run_dir, [a, b], stages=("ingest", "dedupe", "cbrn"))
    audit = build_report(run_dir, CbrnConfig())
    files = audit["origins"]["by_file"]
    assert files["a.jsonl"]["read"] == 3 and files["b.jsonl"]["read"] == 2
    assert files["a.jsonl"]["drops"]["ingest: invalid_json"] == 1
    assert files["b.jsonl"]["drops"]["dedupe: exact_duplicate"] == 1          # b0 repeats a0
    assert files["a.jsonl"]["drops"].get("cbrn: cbrn_classifier", 0) + \
        files["a.jsonl"]["drops"].get("cbrn: cbrn_blocklist", 0) >= 1         # the Schedule 1 text
    cbrn_kept = read_json(run_dir / "cbrn" / "stats.json")["kept"]
    assert sum(v["left"] for v in files.values()) == cbrn_kept
    by_source = audit["origins"]["by_source"]
    assert by_source["news"] == {"dedupe: exact_duplicate": 1}
    assert by_source["—"] == {"ingest: invalid_json": 1}                      # not a record: no source field
    page = (run_dir / "audit" / "report.md").read_text(encoding="utf-8")
    assert "Removals by input file and by source" in page and "| b.jsonl | 2 |" in page


def test_threshold_rationale_with_wilson_intervals(run):
    """The report says how each level's thresholds were chosen, with cross-validated recall and FPR and
    95 % Wilson intervals computed from the model metadata's counts."""
    from filters.audit.sections import wilson
    lo, hi = wilson(583, 717)
    assert (round(lo, 4), round(hi, 4)) == (0.7829, 0.8399)          # worked out by hand from the formula
    assert wilson(0, 817)[0] == 0.0 and 0.004 < wilson(0, 817)[1] < 0.005
    run_dir, audit = run
    cv = audit["cbrn"]["calibration"]["levels"]["balanced"]["cv"]
    r_lo, r_hi = wilson(cv["tp"], cv["tp"] + cv["fn"])
    page = (run_dir / "audit" / "report.md").read_text(encoding="utf-8")
    assert "Why these thresholds" in page
    assert f"{cv['recall']:.4f} \\[{r_lo:.4f}, {r_hi:.4f}\\] ({cv['tp']:,} of {cv['tp'] + cv['fn']:,})" in page


def test_a_removal_without_a_term_shows_its_best_window_and_which_threshold_applied():
    """A classifier-only removal: the report row names the no-term threshold and shows the highest-scoring
    window's word range and at most 8 of its words (even from a tampered ledger that stored more)."""
    from filters.audit.collect import doc_row, threshold_rule
    from filters.audit.sections import _terms_cell
    policy = {"threshold": 0.19, "threshold_strong": 0.03, "threshold_without_terms": 0.9998}
    many = " ".join(f"w{i}" for i in range(40))
    det = {"score": 0.99991, "threshold": 0.9998, "n_terms": 0, "source": "f.jsonl", "line": 3,
           "best_window": {"score": 0.99991, "words": [120, 240], "starts": many}}
    row = doc_row("x", R.CBRN_CLASSIFIER, det, True)
    assert row["best_window"]["starts"] == "w0 w1 w2 w3 w4 w5 w6 w7"
    cell = _terms_cell(row)
    assert "words 120–240" in cell[0] and cell[1] == "w0 w1 w2 w3 w4 w5 w6 w7 …"
    assert threshold_rule({"reason": R.CBRN_CLASSIFIER, **det}, policy) == "no term"
    assert threshold_rule({"reason": R.CBRN_CLASSIFIER, "threshold": 0.03}, policy) == "strong evidence"
    assert threshold_rule({"reason": R.CBRN_BLOCKLIST}, policy) == "blocklist"
