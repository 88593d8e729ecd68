"""MXFP4: exact bytes for a hand-worked block, nearest rounding, HF's dequantizer agrees, packed models run."""
from __future__ import annotations

import copy

import torch

from model import hf
from model.mxfp4 import (BLOCK_SIZE, E2M1_MAGNITUDES, MXFP4Experts, dequantize, dequantize_experts,
                         pack_expert_weight, quantize, quantize_experts, unpack_expert_weight)
from tests.model.conftest import random_tokens, tiny_model


def test_packed_bytes_of_a_known_tensor():
    row = torch.zeros(2 * BLOCK_SIZE)
    # block 0: max 6 -> shared exponent floor(log2 6) - 2 = 0 -> scale byte 127
    row[:8] = torch.tensor([0.5, -1.0, 6.0, 0.25, 0.75, 3.5, 5.0, -0.0])
    # block 1: max 12 -> exponent 1 -> byte 128; values / 2 = 4, 0.5, -6, 0.05
    row[32:36] = torch.tensor([8.0, 1.0, -12.0, 0.1])
    blocks, scales = quantize(row)
    assert scales.tolist() == [127, 128]
    # codes: 0.5->1, -1->0x8|2, 6->7, 0.25->0 (tie to even), 0.75->2 (tie to even), 3.5->6 (tie to even),
    # 5->6 (tie to even: 4.0), -0->0; even element in the low nibble
    assert blocks[0].tolist() == [0xA1, 0x07, 0x62, 0x06] + [0] * 12
    # 4->6, 0.5->1, -6->0x8|7, 0.05->0
    assert blocks[1].tolist() == [0x16, 0x0F] + [0] * 14
    assert dequantize(blocks, scales)[:8].tolist() == [0.5, -1.0, 6.0, 0.0, 1.0, 4.0, 4.0, 0.0]
    assert dequantize(blocks, scales)[32:36].tolist() == [8.0, 1.0, -12.0, 0.0]


def test_values_saturate_at_six_times_the_scale():
    row = torch.zeros(BLOCK_SIZE)
    row[0], row[1] = 7.9, -7.0  # exponent floor(log2 7.9) - 2 = 0: both beyond 6
    assert dequantize(*quantize(row))[:2].tolist() == [6.0, -6.0]


def test_rounding_is_to_the_nearest_representable_value():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8 * BLOCK_SIZE, generator=gen, dtype=torch.float64).float() * 3
    blocks, scales = quantize(x)
    got = dequantize(blocks, scales).double()
    grid = torch.tensor(E2M1_MAGNITUDES, dtype=torch.float64)
    grid = torch.cat([grid, -grid])  # (16,)
    step = torch.ldexp(torch.ones_like(scales, dtype=torch.float64), scales.long() - 127)
    candidates = grid[None, None, :] * step.repeat_interleave(BLOCK_SIZE, dim=1)[..., None]  # (R, K, 16)
    best = (candidates - x.double()[..., None]).abs().min(dim=-1).values
    assert torch.allclose((got - x.double()).abs(), best, rtol=0, atol=1e-12)
    # and the storage is 4.25 bits per value
    assert (blocks.numel() + scales.numel()) * 8 / x.numel() == 4.25


def test_round_trip_is_exact_for_representable_values_and_bounded_otherwise():
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 16, (16, 4, BLOCK_SIZE), generator=gen)
    exponents = torch.randint(-20, 20, (16, 4, 1), generator=gen)
    grid = torch.tensor(E2M1_MAGNITUDES + tuple(-m for m in E2M1_MAGNITUDES))
    exact = torch.ldexp(grid[codes], exponents.float()).flatten(-2)
    assert torch.equal(dequantize(*quantize(exact)), exact)
    x = torch.randn(256, 256, generator=gen)
    rel_rmse = ((dequantize(*quantize(x)) - x).pow(2).mean().sqrt() / x.pow(2).mean().sqrt()).item()
    assert rel_rmse < 0.15, rel_rmse  # ~0.11 measured for Gaussian weights


def test_transformers_dequantizer_reads_our_packing():
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    gen = torch.Generator().manual_seed(2)
    w_EIO = torch.randn(3, 64, 96, generator=gen) * 0.05  # (experts, in, out)
    blocks, scales = pack_expert_weight(w_EIO)
    assert blocks.shape == (3, 96, 2, 16) and scales.shape == (3, 96, 2)
    theirs = convert_moe_packed_tensors(blocks, scales, dtype=torch.float32)
    ours = unpack_expert_weight(blocks, scales)
    assert ours.shape == w_EIO.shape and torch.equal(theirs, ours)


def test_mxfp4_experts_model_is_close_to_the_float_model():
    model = tiny_model(seed=3)
    tokens = random_tokens(model.args.vocab_size, 2, 48, seed=1)
    with torch.no_grad():
        expected = model(tokens)
        quantize_experts(model)
        assert all(isinstance(layer.moe.experts, MXFP4Experts) for layer in model.layers)
        got = model(tokens)
        # on-the-fly dequantization computes exactly what float experts holding the rounded weights do
        dense = dequantize_experts(copy.deepcopy(model))
        assert (dense(tokens) - got).abs().max().item() <= 1e-6
    # Stated tolerance: E2M1 rounding is ~11% RMS per Gaussian weight, and at init the experts dominate
    # the residual stream, so logits move by about as much on average (measured 0.117); the top-1
    # token stays the same for most positions.
    rel = ((got - expected).abs().mean() / expected.abs().mean()).item()
    assert 0 < rel < 0.2, rel
    top1_agree = (got.argmax(-1) == expected.argmax(-1)).float().mean().item()
    assert top1_agree > 0.7, top1_agree


def test_mxfp4_checkpoint_round_trip_through_transformers(tmp_path):
    from transformers import GptOssForCausalLM, Mxfp4Config

    model = quantize_experts(tiny_model(seed=4)).eval()
    hf.save(model, tmp_path)
    loaded = hf.load(tmp_path)  # stays packed
    experts = loaded.layers[0].moe.experts
    assert isinstance(experts, MXFP4Experts) and experts.gate_up_proj_blocks.dtype == torch.uint8
    tokens = random_tokens(model.args.vocab_size, 1, 40, seed=2)
    # CPU without triton kernels: transformers dequantizes the packed experts while loading
    theirs = GptOssForCausalLM.from_pretrained(
        tmp_path, dtype=torch.float32, quantization_config=Mxfp4Config(dequantize=True)).eval()
    with torch.no_grad():
        expected = model(tokens)
        assert torch.equal(loaded(tokens), expected)
        assert (theirs(tokens).logits - expected).abs().max().item() <= 1e-4
        dense = hf.load(tmp_path, dequantize=True)
        assert not any(isinstance(layer.moe.experts, MXFP4Experts) for layer in dense.layers)
        assert (dense(tokens) - expected).abs().max().item() <= 1e-5
