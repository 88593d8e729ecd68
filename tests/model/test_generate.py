"""KV-cache decoding (ring buffer on sliding layers) reproduces the full forward; generate() samples."""
from __future__ import annotations

import pytest
import torch

from model.generate import generate, new_caches
from tests.model.conftest import random_tokens, randomize_, tiny_model


@pytest.mark.parametrize("chunks", [[20] + [1] * 40, [7] * 8 + [4]])
def test_incremental_decoding_gives_the_full_forward_logits(chunks):
    model = randomize_(tiny_model(seed=2), seed=3, std=0.1).eval()  # window 16; 60 tokens wrap the ring
    model.set_rope(yarn_factor=4.0, original_context=16)
    tokens = random_tokens(model.args.vocab_size, 2, sum(chunks), seed=5)
    caches = new_caches(model, max_len=tokens.shape[1])
    assert {c.capacity for c in caches} == {16, tokens.shape[1]}  # sliding layers hold a window only
    with torch.no_grad():
        full = model(tokens)
        pieces, start = [], 0
        for n in chunks:
            pieces.append(model(tokens[:, start:start + n], cache=caches))
            start += n
    stepwise = torch.cat(pieces, dim=1)
    assert (stepwise - full).abs().max().item() <= 1e-5 * max(1.0, full.abs().max().item())


def test_greedy_generation_is_argmax_of_the_full_forward():
    model = randomize_(tiny_model(seed=4), seed=5, std=0.1)
    prompt = random_tokens(model.args.vocab_size, 2, 9, seed=6)
    out = generate(model, prompt, max_new_tokens=30)
    assert out.shape == (2, 39) and torch.equal(out[:, :9], prompt)
    with torch.no_grad():
        expected = prompt
        for _ in range(30):
            expected = torch.cat([expected, model(expected)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)
    assert model.training  # generate() restores the mode it found


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    model = randomize_(tiny_model(seed=4), seed=5, std=0.1)
    prompt = random_tokens(model.args.vocab_size, 1, 5, seed=7)
    draw = lambda seed, **kw: generate(model, prompt, 20, temperature=1.0,  # noqa: E731
                                       generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
    assert torch.equal(draw(3, top_k=1), generate(model, prompt, 20))


def test_generation_stops_when_every_row_hit_eos():
    model = randomize_(tiny_model(seed=4), seed=5, std=0.1)
    prompt = random_tokens(model.args.vocab_size, 1, 5, seed=7)
    greedy = generate(model, prompt, 10)
    eos = int(greedy[0, 8])  # the 4th generated token
    out = generate(model, prompt, 10, eos_id=eos)
    first = (greedy[0, 5:] == eos).nonzero()[0].item()
    assert out.shape[1] == 5 + first + 1 and out[0, -1] == eos
