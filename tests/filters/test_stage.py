"""The `cbrn` pipeline stage: decisions in the ledger, no plaintext of removed documents, fail closed."""
import orjson
import pytest

from common import reasons as R
from common.io import read_jsonl
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats, write_jsonl

# Encyclopedia-level texts written for this test: what an agent is and how it is regulated, nothing more.
TOPIC = [
    "Sarin is an organophosphorus nerve agent listed in Schedule 1 of the Chemical Weapons Convention. "
    "It was used in the 1995 Tokyo subway attack, and the Organisation for the Prohibition of Chemical "
    "Weapons verifies that declared stockpiles are destroyed.",
    "Anthrax is a disease caused by the bacterium Bacillus anthracis, a Tier 1 select agent in the United "
    "States. The 2001 letter attacks led to new rules on laboratory registration and on who may possess "
    "the organism.",
    "Highly enriched uranium and plutonium-239 are nuclear materials under IAEA safeguards. The Treaty on "
    "the Non-Proliferation of Nuclear Weapons commits states to accept inspections of such material.",
]
ORDINARY = [
    "Mustard is a condiment made from the seeds of a mustard plant, mixed with water, vinegar or wine.",
    "The Python standard library provides modules for file handling, networking and text processing.",
    "A heat pump moves thermal energy from a cold space to a warm one using a refrigerant cycle.",
    # a hard negative: names a listed isotope, about an everyday device
    "A household smoke detector holds a tiny sealed source of americium-241. It ionises the air in a small "
    "chamber, and smoke particles that enter change the current and sound the alarm. Detectors should be "
    "replaced every ten years and returned to the maker or a recycling point rather than put in household waste.",
]


@pytest.fixture(scope="module")
def cbrn_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cbrn")
    src = tmp / "in"
    src.mkdir()
    write_jsonl(src / "docs.jsonl", [{"id": f"t{i}", "text": t} for i, t in enumerate(TOPIC)] +
                [{"id": f"o{i}", "text": t} for i, t in enumerate(ORDINARY)])
    run = tmp / "run"
    run_stages(run, [src], stages=("ingest", "dedupe", "cbrn"))
    return run


def test_topic_documents_are_removed_with_reasons_and_ordinary_ones_kept(cbrn_run):
    rows = {r["id"]: r for r in ledger_rows(cbrn_run, "cbrn")}
    assert len(rows) == len(TOPIC) + len(ORDINARY)
    for i in range(len(TOPIC)):
        assert rows[f"t{i}"]["decision"] == R.REMOVED
        assert rows[f"t{i}"]["reason"] in (R.CBRN_CLASSIFIER, R.CBRN_BLOCKLIST)
    for i in range(len(ORDINARY)):
        assert rows[f"o{i}"]["decision"] == R.KEPT
    assert_books(stats(cbrn_run, "cbrn"))


def test_removed_detail_has_terms_score_threshold_and_provenance_but_no_text(cbrn_run):
    for row in ledger_rows(cbrn_run, "cbrn"):
        if row["decision"] != R.REMOVED:
            continue
        d = orjson.loads(row["detail"])
        assert d["terms"] and d["score"] is not None and d["threshold"] is not None
        assert d["source"] == "docs.jsonl" and isinstance(d["line"], int) and len(d["sha256"]) == 64
        for t in d["terms"]:
            for ctx in t.get("context", []):
                outside = ctx.split("[", 1)[0].split() + ctx.rsplit("]", 1)[-1].split()
                assert len(outside) <= 2 * 8 + 2        # a few words either side, never an excerpt
        assert TOPIC[int(row["id"][1:])] not in row["detail"]
    removed = list(read_jsonl(next((cbrn_run / "cbrn" / "removed").glob("*.jsonl.zst"))))
    assert {r["id"] for r in removed} == {f"t{i}" for i in range(len(TOPIC))}
    assert all("text" not in r and len(r["sha256"]) == 64 for r in removed)
    # where each came from: the input file and line (t{i} is line i + 1 of docs.jsonl)
    assert {(r["id"], r["source"], r["line"]) for r in removed} == {(f"t{i}", "docs.jsonl", i + 1)
                                                                     for i in range(len(TOPIC))}


def test_kept_document_with_a_lexicon_word_records_why_it_stayed(cbrn_run):
    rows = {r["id"]: r for r in ledger_rows(cbrn_run, "cbrn")}
    hard = orjson.loads(rows[f"o{len(ORDINARY) - 1}"]["detail"])  # the smoke detector
    assert rows[f"o{len(ORDINARY) - 1}"]["decision"] == R.KEPT
    assert "Americium-241" in [t if isinstance(t, str) else t.get("term") for t in hard["terms"]]
    assert isinstance(hard["score"], float) and hard["score"] < hard["threshold"]  # scored, under its threshold


def test_stats_record_the_filter_fingerprint_and_histograms(cbrn_run):
    st = stats(cbrn_run, "cbrn")
    f = st["filter"]
    assert len(f["lexicon_sha256"]) == 64 and len(f["model_sha256"]) == 64 and "policy" in f
    sc = st["scores"]
    assert sum(sc["removed"]) + sc["unscored"]["removed"] == sum(st["removed"].values())
    assert sum(sc["kept"]) + sc["unscored"]["kept"] == st["kept"]


def test_a_filter_that_cannot_load_fails_the_stage_closed(tmp_path):
    src = tmp_path / "d.jsonl"
    write_jsonl(src, [{"id": "a", "text": TOPIC[0]}])
    run = tmp_path / "run"
    with pytest.raises(Exception, match="no-such-model"):
        run_stages(run, [src], stages=("ingest", "cbrn"), cbrn={"model_path": str(tmp_path / "no-such-model.ftz")})
    assert not (run / "cbrn" / "stats.json").exists()
    assert not list((run / "cbrn").glob("shards/*.zst"))
