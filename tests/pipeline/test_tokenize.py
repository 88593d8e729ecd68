"""The tokenize stage: Megatron shards read back by megatron-core, zarr, manifest, provenance, ledger."""
import shutil

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from common import reasons
from common.filter_record import policy_sha256
from common.config import ConfigError
from common.io import iter_lines, read_json, sha256_file, write_jsonl_zst
from pipeline import tokenizer as tk
from pipeline.democorpus import DemoCorpusConfig, build
from pipeline.shards import read_shard
from tests.pipeline.helpers import assert_books, ledger_rows, run_stages, stats, write_jsonl

MAX_SEQ = 64
LONG = " ".join(f"word{i} and some more text, sentence {i}." for i in range(300))   # far over MAX_SEQ tokens
CRAFTED = [
    {"id": "long-1", "text": LONG},
    {"id": "specials", "text": "a literal <|endoftext|> and <|start|>user<|message|>hi<|end|> stay text"},
    {"id": "unicode", "text": "héllo wörld 你好 😀 ǅ Ⅻ ١٢٣ e\u0301 🇺🇳"},
    {"id": "crlf", "text": "line one\r\nline two\r\n\r\n  indented\ttab  "},
    {"id": "short", "text": "x"},
]


def _inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokinput")
    data = build(d / "demo", DemoCorpusConfig(docs=200, files=2))
    crafted = write_jsonl(d / "crafted.jsonl", CRAFTED)
    return [data, crafted]


def _tok_sections(**kw):
    return {"ingest": {"docs_per_shard": 50},
            "tokenize": {"allow_unfiltered": True, "vocab_size": 1024, "max_sequence_tokens": MAX_SEQ, **kw}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _inputs(tmp_path_factory)


@pytest.fixture(scope="module")
def run(tmp_path_factory, inputs):
    run_dir = tmp_path_factory.mktemp("tokrun") / "run"
    run_stages(run_dir, inputs, stages=("ingest", "tokenize"), workers=1, **_tok_sections())
    return run_dir


def source_docs(run_dir, stage="ingest"):
    return [d for s in stats(run_dir, stage)["shards"] for d in read_shard(run_dir / stage / "shards" / f"{s['name']}.jsonl.zst")]


def test_megatron_reads_one_document_per_kept_document_and_decodes_to_the_source_text(run):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    st = stats(run, "tokenize")
    docs = source_docs(run)
    assert st["kept"] == st["in"] == len(docs) and st["documents"] == len(docs)
    tok = tk.open_tokenizer(run / "tokenize" / "tokenizer.json")
    eod = tok.token_to_id(tk.EOD_TOKEN)
    ds = IndexedDataset(str(run / "tokenize" / "merged" / "data"))
    bounds = ds.document_indices
    assert len(bounds) - 1 == len(docs) and ds.index.dtype == np.uint16
    for d, doc in enumerate(docs):                       # every document, they are few
        seqs = [ds[i] for i in range(bounds[d], bounds[d + 1])]
        assert all(len(s) <= MAX_SEQ for s in seqs)
        tokens = np.concatenate(seqs)
        assert tokens[-1] == eod and eod not in tokens[:-1]
        assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == doc.text, doc.id
    # each per-shard prefix is a Megatron dataset too
    for s in st["shards"]:
        if s["docs"]:
            assert len(IndexedDataset(str(run / "tokenize" / "shards" / s["name"])).document_indices) == s["docs"] + 1


def test_long_documents_are_split_into_sequences_of_one_document_and_the_ledger_says_so(run):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    rows = {r["id"]: r for r in ledger_rows(run, "tokenize")}
    detail = orjson.loads(rows["long-1"]["detail"])
    assert rows["long-1"]["decision"] == reasons.KEPT
    assert detail["sequences"] == -(-detail["tokens"] // MAX_SEQ) and detail["sequences"] > 3
    assert rows["short"]["detail"] == "{}"                                    # not split: nothing to say
    prov = pq.read_table(run / "tokenize" / "provenance").to_pylist()
    parts = [p for p in prov if p["id"] == "long-1"]
    assert [p["part"] for p in parts] == list(range(detail["sequences"]))
    assert sum(p["token_end"] - p["token_start"] for p in parts) == detail["tokens"]
    st = stats(run, "tokenize")
    assert st["split_documents"] == sum(1 for r in rows.values() if "sequences" in orjson.loads(r["detail"]))
    ds = IndexedDataset(str(run / "tokenize" / "merged" / "data"))
    assert len(ds) == st["sequences"] > st["documents"]


def test_special_token_strings_inside_documents_are_plain_text(run):
    tok = tk.open_tokenizer(run / "tokenize" / "tokenizer.json")
    specials = set(tk.describe(tok, tk.EOD_TOKEN)["special_tokens"].values())
    prov = [p for p in pq.read_table(run / "tokenize" / "provenance").to_pylist() if p["id"] == "specials"]
    shard = prov[0]["src_file"]
    assert shard.endswith("crafted.jsonl")
    name = next(s["name"] for s in stats(run, "tokenize")["shards"]
                if any(p["id"] == "specials" for p in
                       pq.read_table(run / "tokenize" / "provenance" / f"{s['name']}.parquet").to_pylist()))
    tokens = np.fromfile(run / "tokenize" / "shards" / f"{name}.bin", dtype=np.uint16)
    doc = np.concatenate([tokens[p["token_start"]:p["token_end"]] for p in prov])
    assert [t for t in doc.tolist() if t in specials] == [tok.token_to_id(tk.EOD_TOKEN)]


def test_zarr_holds_the_merged_tokens_and_offsets(run):
    import zarr
    g = zarr.open_group(str(run / "tokenize" / "tokens.zarr"), mode="r")
    merged = np.fromfile(run / "tokenize" / "merged" / "data.bin", dtype=np.uint16)
    tokens = g["tokens"]
    assert tokens.dtype == np.uint16 and tokens.shape == merged.shape
    assert [c.to_dict()["name"] for c in tokens.metadata.codecs] == ["bytes", "zstd"]
    np.testing.assert_array_equal(tokens[:], merged)
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    ds = IndexedDataset(str(run / "tokenize" / "merged" / "data"))
    seq_off = g["sequence_offsets"][:]
    np.testing.assert_array_equal(np.diff(seq_off), ds.sequence_lengths)
    np.testing.assert_array_equal(g["document_offsets"][:], seq_off[ds.document_indices])
    assert g.attrs["tokens"] == stats(run, "tokenize")["tokens"]


def test_manifest_records_tokenizer_counts_dtype_and_that_the_data_is_unfiltered(run):
    m = read_json(run / "tokenize" / "manifest.json")
    st = stats(run, "tokenize")
    assert m["tokenizer"]["sha256"] == sha256_file(run / "tokenize" / "tokenizer.json")
    assert m["vocab_size"] == 1024 and m["dtype"] == "uint16" and m["eod_id"] == 0
    assert m["filter"] is None and m["unfiltered"] is True and st["filter"] is None
    assert m["input_stage"] == "ingest"
    assert m["tokens"] == sum(s["tokens"] for s in m["shards"]) == st["tokens"]
    assert m["documents"] == st["kept"] and m["sequences"] == st["sequences"]
    assert m["merged"]["bin_sha256"] == sha256_file(run / "tokenize" / "merged" / "data.bin")
    offset = 0
    for s in m["shards"]:
        assert s["token_offset"] == offset
        assert s["bin_sha256"] == sha256_file(run / "tokenize" / f"{s['prefix']}.bin")
        assert (run / "tokenize" / f"{s['prefix']}.bin").stat().st_size == s["tokens"] * 2
        offset += s["tokens"]
    assert m["tokenizer"]["source"]["kind"] == "trained" and m["tokenizer"]["source"]["input_stage"] == "ingest"


def test_provenance_traces_any_token_to_its_document_source_line_and_ledger_rows(run):
    m = read_json(run / "tokenize" / "manifest.json")
    merged = np.fromfile(run / "tokenize" / "merged" / "data.bin", dtype=np.uint16)
    by_id = {d.id: d for d in source_docs(run)}
    ledger_ingest = {r["id"]: r for r in ledger_rows(run, "ingest")}
    ledger_tok = {r["id"]: r for r in ledger_rows(run, "tokenize")}
    tok = tk.open_tokenizer(run / "tokenize" / "tokenizer.json")
    rng = np.random.default_rng(0)
    for t in rng.integers(0, m["tokens"], 25).tolist() + [0, m["tokens"] - 1]:
        shard = max((s for s in m["shards"] if s["token_offset"] <= t and s["tokens"]), key=lambda s: s["token_offset"])
        prov = pq.read_table(run / "tokenize" / shard["provenance"]).to_pylist()
        local = t - shard["token_offset"]
        row = next(p for p in prov if p["token_start"] <= local < p["token_end"])
        doc = by_id[row["id"]]
        assert doc.provenance == {"file": row["src_file"], "line": row["src_line"]}
        assert ledger_ingest[row["id"]]["decision"] == ledger_tok[row["id"]]["decision"] == reasons.KEPT
        seqs = [p for p in prov if p["document"] == row["document"]]
        tokens = np.concatenate([merged[shard["token_offset"] + p["token_start"]:shard["token_offset"] + p["token_end"]]
                                 for p in seqs])
        assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == doc.text
    # every token is covered once: sequences tile each shard
    for s in m["shards"]:
        prov = pq.read_table(run / "tokenize" / s["provenance"])
        starts, ends = prov.column("token_start").to_numpy(), prov.column("token_end").to_numpy()
        assert (starts[1:] == ends[:-1]).all() and (not len(starts) or (starts[0] == 0 and ends[-1] == s["tokens"]))


def test_books_balance_and_the_ledger_has_a_row_per_document(run):
    st = stats(run, "tokenize")
    assert_books(st)
    assert len(ledger_rows(run, "tokenize")) == st["in"] == stats(run, "ingest")["kept"]


# ---------------------------------------------------------------- failures and the filter contract

def _byte_gap_tokenizer(path, unk=None):
    """A byte-level BPE trained on ASCII only: its vocabulary lacks every non-ASCII byte."""
    from tokenizers import Tokenizer, models, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = tk._byte_level_parts()
    tok.train_from_iterator(["plain ascii text, hello world 0123456789"] * 20,      # no initial alphabet
                            trainers.BpeTrainer(vocab_size=400, special_tokens=[tk.EOD_TOKEN], show_progress=False))
    j = orjson.loads(tok.to_str())
    if unk:
        j["model"]["unk_token"] = unk      # names a token that does not exist: encoding raises
    path.write_bytes(orjson.dumps(j))
    Tokenizer.from_file(str(path))
    return path


@pytest.mark.parametrize("unk, error", [(None, "encoding is lossy"), ("<unk>", "encode failed: Unk token")])
def test_documents_a_tokenizer_cannot_encode_exactly_are_quarantined_and_books_balance(tmp_path, unk, error):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hello world"}, {"id": "b", "text": "héllo"},
                                             {"id": "c", "text": "plain text"}])
    tok = _byte_gap_tokenizer(tmp_path / "gap.json", unk)
    run_stages(tmp_path / "run", [src], stages=("ingest", "tokenize"), tokenize={"tokenizer": str(tok)})
    st = stats(tmp_path / "run", "tokenize")
    assert_books(st)
    assert st["kept"] == 2 and st["quarantined"] == {reasons.TOKENIZE_ERROR: 1} and st["documents"] == 2
    row = next(r for r in ledger_rows(tmp_path / "run", "tokenize") if r["id"] == "b")
    assert row["reason"] == reasons.TOKENIZE_ERROR
    detail = orjson.loads(row["detail"])
    assert error in detail["error"] and detail["file"] == "in.jsonl" and detail["line"] == 2


def test_training_on_unfiltered_input_is_refused_unless_allowed(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hello world"}])
    with pytest.raises(ConfigError, match="allow_unfiltered"):
        run_stages(tmp_path / "run", [src], stages=("ingest", "tokenize"))
    assert not (tmp_path / "run" / "tokenize" / "tokenizer.json").exists()
    with pytest.raises(ConfigError, match="tokenize.tokenizer: file not found"):
        run_stages(tmp_path / "run2", [src], stages=("ingest", "tokenize"), tokenize={"tokenizer": "/no/such.json"})


def _fake_cbrn(run_dir, record):
    """A finished cbrn stage as its contract describes it: shards with the completion markers that
    record their sha256 (the next stage verifies them), stats.json with a `filter` record."""
    st = stats(run_dir, "ingest")
    (run_dir / "cbrn").mkdir()
    shutil.copytree(run_dir / "ingest" / "shards", run_dir / "cbrn" / "shards")
    shutil.copytree(run_dir / "ingest" / "_tasks", run_dir / "cbrn" / "_tasks")
    shutil.copytree(run_dir / "ingest" / "ledger", run_dir / "cbrn" / "ledger")
    cbrn = {**{k: st[k] for k in ("in", "kept", "removed", "quarantined", "shards")}, "stage": "cbrn",
            "input_stage": "ingest", "blocks": {}}
    if record is not None:
        cbrn["filter"] = record
    (run_dir / "cbrn" / "stats.json").write_bytes(orjson.dumps(cbrn))


def test_the_cbrn_filter_record_is_copied_and_training_on_cbrn_output_needs_no_flag(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": f"document number {i} says hello"} for i in range(30)])
    run_stages(tmp_path / "run", [src], stages=("ingest",), tokenize={"vocab_size": 400})
    policy = {"threshold": 0.5, "chunk_words": 150}
    fingerprint = {"lexicon_sha256": "ab" * 32, "lexicon_version": "1", "model_sha256": "cd" * 32, "threshold": 0.5,
                   "policy": policy, "policy_sha256": policy_sha256(policy)}
    _fake_cbrn(tmp_path / "run", fingerprint)
    run_stages(tmp_path / "run", [src], stages=("tokenize",), tokenize={"vocab_size": 400})
    m = read_json(tmp_path / "run" / "tokenize" / "manifest.json")
    cbrn = tmp_path / "run" / "cbrn"
    ledgers = {f"ledger/{p.name}": sha256_file(p) for p in sorted((cbrn / "ledger").glob("*.parquet"))}
    assert ledgers and m["filter"] == {"stage": "cbrn", **fingerprint, "stats_sha256": sha256_file(cbrn / "stats.json"),
                                       "ledgers": ledgers}
    assert m["unfiltered"] is False and m["input_stage"] == "cbrn"
    assert m["tokenizer"]["source"]["input_stage"] == "cbrn" and m["documents"] == 30


def test_cbrn_output_without_a_filter_record_is_refused(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hello world"}])
    run_stages(tmp_path / "run", [src], stages=("ingest",), tokenize={"allow_unfiltered": True})
    _fake_cbrn(tmp_path / "run", None)
    with pytest.raises(RuntimeError, match="no 'filter' record"):
        run_stages(tmp_path / "run", [src], stages=("tokenize",), tokenize={"allow_unfiltered": True})


def test_a_given_tokenizer_json_is_used_byte_for_byte(tmp_path, run, inputs):
    given = run / "tokenize" / "tokenizer.json"
    run_stages(tmp_path / "run", inputs, stages=("ingest", "tokenize"),
               **_tok_sections(tokenizer=str(given), allow_unfiltered=False))
    out = tmp_path / "run" / "tokenize"
    assert (out / "tokenizer.json").read_bytes() == given.read_bytes()
    assert (out / "merged" / "data.bin").read_bytes() == (run / "tokenize" / "merged" / "data.bin").read_bytes()
    m = read_json(out / "manifest.json")
    assert m["tokenizer"]["source"] == {"kind": "tokenizer.json", "file": str(given), "file_sha256": sha256_file(given)}


@pytest.mark.parametrize("key, value, message", [
    ("vocab_size", 100, "tokenize.vocab_size"), ("max_sequence_tokens", 1, "tokenize.max_sequence_tokens"),
    ("train_sample", 0.0, "tokenize.train_sample"), ("eod_token", "", "tokenize.eod_token"),
    ("vocab_sise", 10, "did you mean 'vocab_size'"),
])
def test_bad_config_values_name_the_key(key, value, message):
    from common import config as cfgmod
    with pytest.raises(ConfigError, match=message):
        cfgmod.load(data={"tokenize": {key: value}})


def test_a_damaged_input_shard_is_an_error_naming_file_and_line(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "hello world"}, {"id": "b", "text": "more"}])
    run_stages(tmp_path / "run", [src], stages=("ingest",), tokenize={"allow_unfiltered": True})
    shard = next((tmp_path / "run" / "ingest" / "shards").glob("*.jsonl.zst"))
    lines = [orjson.loads(line) for _, line in iter_lines(shard)]
    del lines[1]["text"]
    write_jsonl_zst(shard, lines)
    # a shard changed after its marker was written is refused before anything reads it
    with pytest.raises(RuntimeError, match=rf"{shard.name}: its sha256 differs from the one its completion marker"):
        run_stages(tmp_path / "run", [src], stages=("tokenize",), tokenize={"allow_unfiltered": True})
    # one its producer wrote that way (its marker agrees) fails at the bad record, naming file and line
    marker = next(p for p in (tmp_path / "run" / "ingest" / "_tasks").glob("*/*.json")
                  if f"shards/{shard.name}" in read_json(p)["outputs"])
    m = read_json(marker)
    m["outputs"][f"shards/{shard.name}"] = sha256_file(shard)
    marker.write_bytes(orjson.dumps(m))
    with pytest.raises(RuntimeError, match=rf"{shard.name}:2: cannot read document: KeyError\('text'\)"):
        run_stages(tmp_path / "run", [src], stages=("tokenize",), tokenize={"allow_unfiltered": True})


def test_a_vocabulary_over_65536_ids_is_written_as_int32_and_reads_back(tmp_path, run):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from tokenizers import AddedToken, Tokenizer
    tok = Tokenizer.from_file(str(run / "tokenize" / "tokenizer.json"))
    tok.add_special_tokens([AddedToken(f"<|reserved_{i}|>", special=True, normalized=False) for i in range(65000)])
    assert tok.get_vocab_size() > 1 << 16
    big = tmp_path / "big.json"
    tok.save(str(big))
    src = write_jsonl(tmp_path / "in.jsonl", CRAFTED)
    run_stages(tmp_path / "run", [src], stages=("ingest", "tokenize"), tokenize={"tokenizer": str(big)})
    m = read_json(tmp_path / "run" / "tokenize" / "manifest.json")
    assert m["dtype"] == "int32" and m["vocab_size"] == tok.get_vocab_size()
    ds = IndexedDataset(str(tmp_path / "run" / "tokenize" / "merged" / "data"))
    assert ds.index.dtype == np.int32 and len(ds.document_indices) == len(CRAFTED) + 1
    tokens = np.concatenate([ds[i] for i in range(ds.document_indices[2], ds.document_indices[3])])
    assert tok.decode(tokens[:-1].tolist(), skip_special_tokens=False) == source_docs(tmp_path / "run")[2].text
