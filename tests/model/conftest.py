"""Shared builders: small random HF GptOss models and our models, all seeded."""
from __future__ import annotations

import pytest
import torch

from model import Transformer, get_preset

# Small but structurally complete: sliding window 8 (the test sequences are >= 3x longer), YaRN on,
# 4 experts top-2, GQA 4 query heads over 2 KV heads, head_dim 16.
HF_SMALL = dict(
    vocab_size=96, hidden_size=64, intermediate_size=64, head_dim=16, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
    sliding_window=8, max_position_embeddings=128,
    rope_parameters={"rope_type": "yarn", "rope_theta": 10_000.0, "factor": 4.0, "beta_fast": 32.0,
                     "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 32},
)


def randomize_(module: torch.nn.Module, seed: int, std: float = 0.2) -> torch.nn.Module:
    """Overwrite every float parameter with N(0, std) (norm weights around 1): large enough that routing,
    sinks, the SwiGLU clamp and the sliding window all change the logits."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if not p.is_floating_point():
                continue
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype) * std
            p.copy_(1.0 + noise if "norm" in name else noise)
    return module


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tensors are tiny: one thread is faster, and immune to OpenMP stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def hf_small_model():
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(0)
    model = GptOssForCausalLM(GptOssConfig(**HF_SMALL))
    return randomize_(model, seed=1).eval()


def tiny_model(seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    model = Transformer(get_preset("tiny", **overrides))
    model.init_weights()
    return model


def random_tokens(vocab: int, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))
