"""HF GptOss checkpoints in and out: same logits both ways, a key map that maps everything or raises."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from model import get_preset, hf
from model.mxfp4 import quantize_experts
from tests.model.conftest import HF_SMALL, random_tokens, randomize_, tiny_model

SEQ = 5 * HF_SMALL["sliding_window"]  # well past the window: sliding and full layers differ


def test_hf_checkpoint_loads_with_equal_logits(hf_small_model, tmp_path):
    hf_small_model.save_pretrained(tmp_path)
    ours = hf.load(tmp_path)
    tokens = random_tokens(HF_SMALL["vocab_size"], 2, SEQ, seed=3)
    with torch.no_grad():
        expected = hf_small_model(tokens).logits
        got = ours(tokens)
    assert got.shape == (2, SEQ, HF_SMALL["vocab_size"]) and got.dtype == torch.float32
    assert (got - expected).abs().max().item() <= 1e-4

    # The comparison has teeth: the window, YaRN and the sinks each move these logits.
    with torch.no_grad():
        for layer in ours.layers:
            layer.attention.sliding_window = None
        assert (ours(tokens) - expected).abs().max().item() > 1e-2
        ours = hf.load(tmp_path)
        ours.set_rope(yarn_factor=1.0, original_context=32)
        assert (ours(tokens) - expected).abs().max().item() > 1e-2
        ours = hf.load(tmp_path)
        for layer in ours.layers:
            layer.attention.sinks.zero_()
        assert (ours(tokens) - expected).abs().max().item() > 1e-2


def test_save_then_from_pretrained_gives_same_logits(tmp_path):
    from transformers import GptOssForCausalLM

    ours = randomize_(tiny_model(seed=5), seed=6).eval()
    ours.set_rope(yarn_factor=4.0, original_context=16)  # YaRN on in the exported config
    hf.save(ours, tmp_path)
    theirs = GptOssForCausalLM.from_pretrained(tmp_path).eval()
    assert theirs.config.rope_parameters["rope_type"] == "yarn" and theirs.config.rope_parameters["factor"] == 4.0
    tokens = random_tokens(ours.args.vocab_size, 2, 3 * ours.args.sliding_window + 5, seed=7)
    with torch.no_grad():
        assert (theirs(tokens).logits - ours(tokens)).abs().max().item() <= 1e-4
    # and back again: a lossless round trip of every tensor
    again = hf.load(tmp_path)
    for name, tensor in ours.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name


def test_key_map_covers_every_parameter_both_ways(hf_small_model):
    ours = tiny_model()
    for name in ours.state_dict():
        assert hf.our_key(hf.hf_key(name)) == name
    for name in quantize_experts(tiny_model()).state_dict():
        assert hf.our_key(hf.hf_key(name)) == name
    for name in hf_small_model.state_dict():
        assert hf.hf_key(hf.our_key(name)) == name


def test_unmapped_keys_are_errors_that_name_the_key():
    with pytest.raises(KeyError, match="model.layers.0.mlp.gate.weight"):
        hf.our_key("model.layers.0.mlp.gate.weight")
    with pytest.raises(KeyError, match="layers.0.attention.wqkv.weight"):
        hf.hf_key("layers.0.attention.wqkv.weight")


def test_load_rejects_extra_and_missing_tensors_by_name(hf_small_model, tmp_path):
    hf_small_model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    save_file({**weights, "model.layers.0.mlp.shared_expert.weight": torch.zeros(2)},
              tmp_path / "model.safetensors")
    with pytest.raises(KeyError, match="model.layers.0.mlp.shared_expert.weight"):
        hf.load(tmp_path)
    del weights["model.layers.2.self_attn.sinks"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(KeyError, match="model.layers.2.self_attn.sinks"):
        hf.load(tmp_path)


def test_load_rejects_a_shape_the_config_does_not_imply(hf_small_model, tmp_path):
    hf_small_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="gate_up_proj"):
        hf.load(tmp_path)


def test_sharded_checkpoint_and_bf16_load(hf_small_model, tmp_path):
    hf_small_model.save_pretrained(tmp_path, max_shard_size="200KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    tokens = random_tokens(HF_SMALL["vocab_size"], 1, SEQ, seed=4)
    with torch.no_grad():
        expected = hf_small_model(tokens).logits
        assert (hf.load(tmp_path)(tokens) - expected).abs().max().item() <= 1e-4
        half = hf.load(tmp_path, dtype=torch.bfloat16)
        assert all(p.dtype == torch.bfloat16 for p in half.parameters())
        # bf16 rounding flips router top-k picks in this deliberately sharp random model, so compare on
        # average (HF's own bf16 forward is ~6% off float32 here; a wrong mapping would be ~100%)
        rel = (half(tokens).float() - expected).abs().mean() / expected.abs().mean()
        assert rel.item() < 0.15


# The published openai/gpt-oss-120b config.json (transformers 4.55 format: rope_scaling + rope_theta).
PUBLISHED_120B_CONFIG = {
    "architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "eos_token_id": 200002, "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880,
    "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 18, "max_position_embeddings": 131072,
    "model_type": "gpt_oss", "num_attention_heads": 64, "num_experts_per_tok": 4, "num_hidden_layers": 36,
    "num_key_value_heads": 8, "num_local_experts": 128, "output_router_logits": False, "pad_token_id": 199999,
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": False},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
    "tie_word_embeddings": False, "use_cache": True, "vocab_size": 201088,
}


def test_published_config_reads_as_the_preset():
    assert hf.args_from_hf_config(PUBLISHED_120B_CONFIG) == get_preset("gpt-oss-120b")


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        hf.args_from_hf_config({**PUBLISHED_120B_CONFIG, "tie_word_embeddings": True})
    with pytest.raises(ValueError, match="num_local_experts"):
        hf.args_from_hf_config({k: v for k, v in PUBLISHED_120B_CONFIG.items() if k != "num_local_experts"})
    with pytest.raises(ValueError, match="rope_type"):
        hf.args_from_hf_config({**PUBLISHED_120B_CONFIG, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
