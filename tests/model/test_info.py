"""Sizes from shapes: the presets reproduce the published gpt-oss totals; 120b fits in 80 GB."""
from __future__ import annotations

import json

import pytest

from model import Transformer, get_preset
from model.info import kv_cache_bytes, main, param_counts, weight_bytes


@pytest.mark.parametrize("preset,total,active", [
    ("gpt-oss-120b", 116.83e9, 5.13e9),  # OpenAI's gpt-oss model card
    ("gpt-oss-20b", 20.91e9, 3.61e9),
])
def test_presets_reproduce_published_parameter_counts(preset, total, active):
    c = param_counts(get_preset(preset))
    assert c["total"] == pytest.approx(total, rel=0.005)
    assert c["active"] == pytest.approx(active, rel=0.005)


def test_120b_weights_fit_in_80_gb_with_mxfp4_experts():
    args = get_preset("gpt-oss-120b")
    assert weight_bytes(args, mxfp4_experts=True) < 80e9 < weight_bytes(args, mxfp4_experts=False)
    # the published 120b checkpoint is ~65 GB
    assert weight_bytes(args) == pytest.approx(65e9, rel=0.03)


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_counts_match_an_instantiated_model(preset):
    args = get_preset(preset)
    assert param_counts(args)["total"] == sum(p.numel() for p in Transformer(args).parameters())


def test_kv_cache_counts_sliding_layers_up_to_their_window():
    args = get_preset("gpt-oss-120b")
    per_layer_token = 2 * 8 * 64 * 2  # k and v, 8 KV heads, head_dim 64, bf16
    assert kv_cache_bytes(args, 100) == 36 * 100 * per_layer_token
    assert kv_cache_bytes(args, 131072) == per_layer_token * (18 * 131072 + 18 * 128)


def test_cli_prints_table_and_json(capsys):
    assert main(["--preset", "gpt-oss-120b", "--context", "8192"]) == 0
    assert "parameters, active per token" in capsys.readouterr().out
    assert main(["--preset", "gpt-oss-20b", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params_total"] == param_counts(get_preset("gpt-oss-20b"))["total"]
