"""Sink attention on SDPA against a float64 softmax written out by hand (values and gradients)."""
from __future__ import annotations

import pytest
import torch

from model.attention import causal_mask, sink_attention


def reference_attention(q, k, v, sinks, mask):
    """softmax([q.k/sqrt(Dh) masked, sink]) without the sink column, times v (GQA by repetition)."""
    H, K, Dh = q.shape[1], k.shape[1], q.shape[-1]
    k, v = k.repeat_interleave(H // K, dim=1), v.repeat_interleave(H // K, dim=1)
    logits = (q @ k.transpose(-1, -2)) * Dh ** -0.5
    logits = logits.masked_fill(~mask, float("-inf"))
    sink_col = sinks.view(1, H, 1, 1).expand(*logits.shape[:-1], 1)
    probs = torch.softmax(torch.cat([logits, sink_col], dim=-1), dim=-1)[..., :-1]
    return probs @ v


def _inputs(B, H, K, T, S, Dh, seed):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *shape: (torch.randn(*shape, generator=g, dtype=torch.float64) * 1.5).requires_grad_()  # noqa: E731
    return mk(B, H, T, Dh), mk(B, K, S, Dh), mk(B, K, S, Dh), mk(H)


@pytest.mark.parametrize("window", [None, 5, 12])  # 5: blocked band path; 12: one mask
@pytest.mark.parametrize("heads", [(4, 2), (4, 4)])
def test_sink_attention_matches_reference_with_gradients(window, heads):
    H, K = heads
    T = 23
    q, k, v, sinks = _inputs(2, H, K, T, T, 8, seed=window or 0)
    positions = torch.arange(T)
    mask = causal_mask(positions, positions, window)
    got = sink_attention(q.float(), k.float(), v.float(), sinks.float(),
                         mask_TS=None if window is None else mask)
    ref = reference_attention(q, k, v, sinks, mask)
    assert (got.double() - ref).abs().max().item() < 1e-5
    upstream = torch.randn(ref.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    grads_got = torch.autograd.grad((got.double() * upstream).sum(), [q, k, v, sinks])
    grads_ref = torch.autograd.grad((ref * upstream).sum(), [q, k, v, sinks])
    for name, a, b in zip("q k v sinks".split(), grads_got, grads_ref):
        assert (a - b).abs().max().item() < 1e-4, name


def test_explicit_mask_with_empty_cache_slots():
    q, k, v, sinks = _inputs(1, 4, 2, 3, 10, 8, seed=3)
    key_positions = torch.tensor([-1, -1, 8, 9, 5, 6, 7, 10, 11, 12])  # ring slots, two never written
    mask = causal_mask(torch.tensor([10, 11, 12]), key_positions, 4)
    assert mask.tolist()[0] == [False, False, True, True, False, False, True, True, False, False]
    got = sink_attention(q.float(), k.float(), v.float(), sinks.float(), mask_TS=mask)
    assert (got.double() - reference_attention(q, k, v, sinks, mask)).abs().max().item() < 1e-5


def test_a_large_sink_attends_to_nothing_and_a_small_one_to_everything():
    q, k, v, _ = _inputs(1, 2, 2, 6, 6, 8, seed=4)
    q, k, v = q.detach().float(), k.detach().float(), v.detach().float()
    assert sink_attention(q, k, v, torch.full((2,), 80.0), mask_TS=None).abs().max().item() < 1e-6
    plain = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert (sink_attention(q, k, v, torch.full((2,), -80.0), mask_TS=None) - plain).abs().max().item() < 1e-6


def test_window_sees_exactly_window_keys_including_itself():
    pos = torch.arange(12)
    mask = causal_mask(pos, pos, 4)
    assert mask.sum(-1).tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    assert mask[9].nonzero().flatten().tolist() == [6, 7, 8, 9]


def test_gpu_lane_padding_is_exact(monkeypatch):
    """CUDA pads the sink lane to a multiple of 8 lanes; the extra zero lanes must not change anything."""
    import model.attention as attention

    monkeypatch.setattr(attention, "extended_head_dim", lambda head_dim, device: head_dim + 8)
    q, k, v, sinks = _inputs(2, 4, 2, 19, 19, 8, seed=5)
    positions = torch.arange(19)
    for window in (None, 4):
        mask = causal_mask(positions, positions, window)
        got = (sink_attention(q.float(), k.float(), v.float(), sinks.float(), mask_TS=None) if window is None
               else attention.sliding_sink_attention(q.float(), k.float(), v.float(), sinks.float(), window=window))
        assert (got.double() - reference_attention(q, k, v, sinks, mask)).abs().max().item() < 1e-5
