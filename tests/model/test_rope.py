"""RoPE/YaRN frequencies equal HF's; YaRN switches at a phase boundary without touching weights."""
from __future__ import annotations

import pytest
import torch

from model import Transformer, get_preset
from model.rope import RotaryEmbedding, apply_rotary, yarn_inv_freq
from tests.model.conftest import random_tokens, tiny_model


@pytest.mark.parametrize("head_dim,theta,factor,original,truncate", [
    (64, 150_000.0, 32.0, 4096, False),  # gpt-oss
    (32, 150_000.0, 4.0, 256, False),  # the demo's phase 2
    (16, 10_000.0, 8.0, 64, True),
])
def test_yarn_frequencies_and_temperature_match_transformers(head_dim, theta, factor, original, truncate):
    from transformers import GptOssConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = GptOssConfig(head_dim=head_dim, hidden_size=128, num_attention_heads=4,
                          max_position_embeddings=original * int(factor),
                          rope_parameters={"rope_type": "yarn", "rope_theta": theta, "factor": factor,
                                           "original_max_position_embeddings": original, "beta_fast": 32.0,
                                           "beta_slow": 1.0, "truncate": truncate})
    expected, expected_scale = ROPE_INIT_FUNCTIONS["yarn"](config, "cpu")
    got, scale = yarn_inv_freq(head_dim=head_dim, theta=theta, factor=factor, original_context=original,
                               beta_fast=32.0, beta_slow=1.0, truncate=truncate)
    assert torch.equal(got, expected) and scale == pytest.approx(expected_scale, abs=0)
    plain, one = yarn_inv_freq(head_dim=head_dim, theta=theta, factor=1.0, original_context=original,
                               beta_fast=32.0, beta_slow=1.0, truncate=truncate)
    assert one == 1.0 and torch.equal(plain, 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    # NTK-by-parts: the fastest lane keeps its frequency, the slowest is divided by the factor
    assert got[0] == plain[0] and torch.allclose(got[-1], plain[-1] / factor)


def test_plain_rope_scores_depend_only_on_distance():
    rope = RotaryEmbedding(get_preset("tiny"))
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 32, generator=g), torch.randn(1, 1, 1, 32, generator=g)

    def score(i, j):
        cos, sin = rope(torch.tensor([i, j]))
        qi = apply_rotary(q, cos[:1], sin[:1])
        kj = apply_rotary(k, cos[1:], sin[1:])
        return (qi * kj).sum().item()
    assert score(10, 7) == pytest.approx(score(103, 100), rel=1e-4)
    assert score(10, 7) != pytest.approx(score(10, 2), rel=1e-2)


def test_set_rope_equals_a_model_built_with_those_settings():
    model = tiny_model(seed=1)
    tokens = random_tokens(model.args.vocab_size, 1, 40)
    with torch.no_grad():
        before = model(tokens)
        model.set_rope(yarn_factor=4.0, original_context=16)
        after = model(tokens)
        fresh = Transformer(get_preset("tiny", yarn_factor=4.0, yarn_original_context=16))
        fresh.load_state_dict(model.state_dict())
        assert model.args.yarn_factor == 4.0 and model.args.yarn_original_context == 16
        assert torch.equal(after, fresh(tokens))
        assert (after - before).abs().max().item() > 1e-3
        model.set_rope(yarn_factor=1.0, original_context=16)
        assert torch.equal(model(tokens), before)
