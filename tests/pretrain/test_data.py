"""Manifest checks (CBRN filter record, tolerant key names, one tokenizer per blend) and megatron-core's
GPTDataset: packed sequences, seed-fixed order independent of the data-parallel size, blend weights."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from pretrain.config import DataConfig, DataSource, PhaseConfig
from pretrain.data import DataError, PhaseData, build_dataset, read_manifest, resolve_sources
from tests.pretrain.conftest import make_tokenized


def edit_manifest(directory, **changes):
    path = directory / "manifest.json"
    m = json.loads(path.read_text())
    for k, v in changes.items():
        if v is ...:
            m.pop(k, None)
        else:
            m[k] = v
    path.write_text(json.dumps(m))


@pytest.mark.parametrize("changes", [{"filter": None}, {"filter": {}}, {"unfiltered": True}])
def test_manifest_without_a_filter_record_is_refused(tmp_path, changes):
    d = make_tokenized(tmp_path / "tok")
    edit_manifest(d, **changes)
    with pytest.raises(DataError, match="CBRN filter.*--allow-unfiltered"):
        read_manifest(d)


def _forge(d, edit) -> None:
    m = json.loads((d / "manifest.json").read_text())
    edit(m["filter"])
    (d / "manifest.json").write_text(json.dumps(m))


def test_the_real_filter_record_is_verified_against_the_cbrn_stage(tmp_path):
    d = make_tokenized(tmp_path / "tok")
    s = read_manifest(d)
    assert s.filter is not None and s.filter["stage"] == "cbrn"
    assert "matches" in s.filter_check and str(tmp_path / "cbrn" / "stats.json") in s.filter_check


FORGERIES = {
    "note only": (lambda f: (f.clear(), f.update(stage="cbrn", note="trust me")), "filter.lexicon_sha256: missing"),
    "no ledgers": (lambda f: f.pop("ledgers"), "filter.ledgers: missing"),
    "no stats digest": (lambda f: f.pop("stats_sha256"), "filter.stats_sha256: missing"),
    "bad model digest": (lambda f: f.update(model_sha256="0" * 12), "filter.model_sha256: expected a sha256"),
    "wrong stage": (lambda f: f.update(stage="dedupe"), "filter.stage: expected 'cbrn'"),
    "threshold raised": (lambda f: f["policy"].update(threshold=0.99), "filter.policy_sha256: does not match"),
    "threshold field": (lambda f: f.update(threshold=0.99), "filter.threshold: 0.99 differs"),
    "a level's threshold lowered": (lambda f: f["policy"]["levels"]["balanced"].update(threshold=0.0),
                                    "filter.policy_sha256: does not match"),
    "policy level switched": (lambda f: f["policy"].update(policy="narrow"), "filter.policy_sha256: does not match"),
    "other model": (lambda f: f.update(model_sha256="ab" * 32), "filter.model_sha256: '" + "ab" * 32 + "' but"),
    "stats digest": (lambda f: f.update(stats_sha256="cd" * 32), "filter.stats_sha256: " + "cd" * 32 + " but"),
    "ledger digest": (lambda f: f["ledgers"].update({k: "ef" * 32 for k in list(f["ledgers"])[:1]}),
                      r"filter.ledgers\['ledger/.*\.parquet'\]: efef"),
    "ledger dropped": (lambda f: f["ledgers"].pop(sorted(f["ledgers"])[0]), "not listed, yet present"),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_a_forged_or_partial_filter_record_is_refused_naming_the_field(tmp_path, name):
    edit, message = FORGERIES[name]
    d = make_tokenized(tmp_path / "tok")
    _forge(d, edit)
    with pytest.raises(DataError, match=message):
        read_manifest(d)


def test_the_record_must_match_the_cbrn_files_beside_it(tmp_path):
    d = make_tokenized(tmp_path / "tok")
    cbrn = tmp_path / "cbrn"
    stats = json.loads((cbrn / "stats.json").read_text())
    stats["kept"] += 1
    (cbrn / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(DataError, match="filter.stats_sha256: .* but .*cbrn/stats.json has sha256"):
        read_manifest(d)
    shutil.rmtree(cbrn)  # shards moved away from their run: the record's form is still checked
    s = read_manifest(d)
    assert s.filter is not None and "not present here" in s.filter_check


def test_allow_unfiltered_warns_loudly(tmp_path, capsys):
    d = make_tokenized(tmp_path / "tok", filtered=False)
    source = read_manifest(d, allow_unfiltered=True)
    assert source.filter is None
    assert "DID NOT PASS THE CBRN FILTER" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["filter", "vocab_size", "eod_id", "tokenizer", "merged"])
def test_the_manifest_is_read_by_the_names_its_writer_uses(tmp_path, key):
    """No aliases: a field missing (renamed, hand-written, another tool's) is refused, naming it."""
    d = make_tokenized(tmp_path / "tok")
    m = json.loads((d / "manifest.json").read_text())
    m[f"{key}_renamed"] = m.pop(key)
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match=f"manifest.json: '{key}' missing"):
        read_manifest(d)
    m[key] = "not an object" if key in ("tokenizer", "merged") else -1 if key != "filter" else 7
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match=f"'{key}' must be"):
        read_manifest(d)


def test_missing_pieces_name_the_file(tmp_path):
    with pytest.raises(DataError, match="manifest.json: not found"):
        read_manifest(tmp_path)
    d = make_tokenized(tmp_path / "tok")
    (d / "merged" / "data.idx").unlink()
    with pytest.raises(DataError, match=r"data\.idx not found"):
        read_manifest(d)


def test_blend_needs_one_tokenizer(tmp_path):
    make_tokenized(tmp_path / "a")
    make_tokenized(tmp_path / "b")
    tokenizer = json.loads((tmp_path / "b" / "manifest.json").read_text())["tokenizer"]
    edit_manifest(tmp_path / "b", tokenizer={**tokenizer, "sha256": "other"})
    cfg = DataConfig(sources=[DataSource(path="a"), DataSource(path="b")])
    with pytest.raises(DataError, match="tokenizer_sha256"):
        resolve_sources(cfg, tmp_path)


def _phase(**kw) -> PhaseConfig:
    return PhaseConfig(**{"name": "p", "steps": 6, "seq_len": 32, "global_batch": 8, **kw})


def test_sample_order_is_fixed_by_the_seed_and_independent_of_dp(tmp_path, gloo_world):
    sources = resolve_sources(DataConfig(), make_tokenized(tmp_path / "run" / "tokenize").parent)
    phase = _phase()
    ds = build_dataset(sources, seq_len=32, num_samples=48, seed=3, cache_dir=tmp_path / "cache")
    one = PhaseData(ds, phase, dp_rank=0, dp=1)
    halves = [PhaseData(ds, phase, dp_rank=r, dp=2) for r in range(2)]
    micro = PhaseData(ds, _phase(micro_batch=2), dp_rank=1, dp=2)
    for step in range(3):
        whole = one.micro_batches(step, torch.device("cpu"))[0]
        assert whole.tokens.shape == (8, 32) and torch.equal(whole.labels[:, :-1], whole.tokens[:, 1:])
        parts = torch.cat([h.micro_batches(step, torch.device("cpu"))[0].tokens for h in halves])
        assert torch.equal(parts, whole.tokens)
        assert torch.equal(torch.cat([m.tokens for m in micro.micro_batches(step, torch.device("cpu"))]),
                           whole.tokens[4:])
    again = build_dataset(sources, seq_len=32, num_samples=48, seed=3, cache_dir=tmp_path / "cache2")
    other = build_dataset(sources, seq_len=32, num_samples=48, seed=4, cache_dir=tmp_path / "cache2")
    assert all(torch.equal(ds[i]["tokens"], again[i]["tokens"]) for i in range(48))
    assert not all(torch.equal(ds[i]["tokens"], other[i]["tokens"]) for i in range(48))
    # packing: documents run across sequence boundaries, separated by the end-of-document id
    assert (torch.stack([ds[i]["tokens"] for i in range(48)]) == 0).any()


def test_blend_follows_the_weights(tmp_path, gloo_world):
    make_tokenized(tmp_path / "a")
    make_tokenized(tmp_path / "b")
    cfg = DataConfig(sources=[DataSource(path="a", weight=3.0), DataSource(path="b", weight=1.0)])
    ds = build_dataset(resolve_sources(cfg, tmp_path), seq_len=16, num_samples=400, seed=0,
                       cache_dir=tmp_path / "cache")
    share_a = np.mean([int(ds[i]["dataset_id"]) == 0 for i in range(400)])
    assert 0.7 <= share_a <= 0.8


@pytest.mark.parametrize("damage", ["objects", "empty", "cut short"])
def test_index_cache_holding_objects_or_cut_short_is_rebuilt(tmp_path, gloo_world, damage):
    """A pickled array (unsafe to load), an empty file or one cut short (a kill -9 during megatron's
    cache write, found by the trainer chaos test) is deleted and rebuilt to the same samples."""
    sources = resolve_sources(DataConfig(), make_tokenized(tmp_path / "run" / "tokenize").parent)
    cache = tmp_path / "cache"
    ds = build_dataset(sources, seq_len=16, num_samples=20, seed=0, cache_dir=cache)
    expected = [ds[i]["tokens"] for i in range(20)]
    victim = sorted(cache.glob("*shuffle_index.npy"))[0]
    if damage == "objects":
        np.save(victim, np.array([{"not": "an index"}], dtype=object), allow_pickle=True)
    elif damage == "empty":
        victim.write_bytes(b"")
    else:
        victim.write_bytes(victim.read_bytes()[:-8])
    again = build_dataset(sources, seq_len=16, num_samples=20, seed=0, cache_dir=cache)
    assert all(torch.equal(again[i]["tokens"], expected[i]) for i in range(20))
    np.load(victim, allow_pickle=False)  # rebuilt as a plain array


def test_validation_documents_are_held_out_of_training(tmp_path, gloo_world):
    sources = resolve_sources(DataConfig(), make_tokenized(tmp_path / "run" / "tokenize").parent)
    train, valid = build_dataset(sources, seq_len=32, num_samples=64, seed=3, cache_dir=tmp_path / "cache",
                                 valid_fraction=0.05, valid_samples=10)
    inner = lambda ds: getattr(ds, "datasets", [ds])[0]  # noqa: E731  (a blend of one wraps its GPTDataset)
    train_docs, valid_docs = set(inner(train).document_index.tolist()), set(inner(valid).document_index.tolist())
    assert train_docs and valid_docs and not train_docs & valid_docs
    n = sources[0].documents
    assert max(train_docs) < min(valid_docs) and valid_docs <= set(range(n))  # the last documents, by index
    assert len(valid) >= 10
    assert torch.equal(valid[0]["tokens"], build_dataset(sources, seq_len=32, num_samples=64, seed=3,
                                                         cache_dir=tmp_path / "cache2", valid_fraction=0.05,
                                                         valid_samples=10)[1][0]["tokens"])  # deterministic
    with pytest.raises(DataError, match="holds out no document"):
        build_dataset(sources, seq_len=32, num_samples=64, seed=3, cache_dir=tmp_path / "cache3",
                      valid_fraction=0.001, valid_samples=10)
