"""The model as a training module: presets, aux outputs, gradients everywhere, determinism, dtypes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model import ModelArgs, Transformer, get_preset
from tests.model.conftest import random_tokens, randomize_, tiny_model


def _loss(model, tokens):
    logits, aux = model.forward_with_aux(tokens[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten()) + 0.01 * aux.aux_loss


def test_tiny_preset_size_and_alternating_layers():
    args = get_preset("tiny")
    n = sum(p.numel() for p in Transformer(args).parameters())
    assert 1_000_000 <= n <= 2_000_000
    assert args.layer_types == ("sliding_attention", "full_attention") * 2
    assert get_preset("tiny", n_layers=3).layer_types == ("sliding_attention", "full_attention", "sliding_attention")


def test_bad_config_errors_name_the_field():
    with pytest.raises(ValueError, match="unknown model preset 'gpt-oss-12b'.*did you mean 'gpt-oss-120b'"):
        get_preset("gpt-oss-12b")
    with pytest.raises(ValueError, match="n_expert.*did you mean 'n_experts'"):
        get_preset("tiny", n_expert=4)
    with pytest.raises(ValueError, match="n_kv_heads"):
        get_preset("tiny", n_kv_heads=3)
    with pytest.raises(ValueError, match="top_k"):
        get_preset("tiny", top_k=9)
    with pytest.raises(ValueError, match="layer_types"):
        get_preset("tiny", layer_types=("sliding_attention",) * 3)


def test_forward_with_aux_shapes_and_counts():
    model = tiny_model()
    tokens = random_tokens(model.args.vocab_size, 2, 33)
    logits, aux = model.forward_with_aux(tokens)
    assert logits.shape == (2, 33, model.args.vocab_size)
    assert aux.tokens_per_expert.shape == (model.args.n_layers, model.args.n_experts)
    assert aux.tokens_per_expert.sum(-1).tolist() == [2 * 33 * model.args.top_k] * model.args.n_layers
    assert aux.aux_loss.ndim == 0 and aux.aux_loss.requires_grad
    assert torch.equal(model(tokens), logits)  # forward() is the same computation


def test_every_parameter_gets_a_gradient():
    model = randomize_(tiny_model(), seed=1, std=0.05)
    _loss(model, random_tokens(model.args.vocab_size, 2, 41)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_training_step_is_bitwise_deterministic():
    grads = []
    for _ in range(2):
        model = tiny_model(seed=7)
        _loss(model, random_tokens(model.args.vocab_size, 2, 48, seed=1)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.equal(grads[0], grads[1])


def test_bf16_weights_and_bf16_autocast_train():
    tokens = random_tokens(512, 2, 40)
    with torch.no_grad():
        reference = tiny_model(seed=3)(tokens)
    half = tiny_model(seed=3).to(torch.bfloat16)
    loss = _loss(half, tokens)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad.dtype == torch.bfloat16 for p in half.parameters())
    mixed = tiny_model(seed=3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = _loss(mixed, tokens)
        logits = mixed(tokens)
    loss.backward()
    assert logits.dtype == torch.bfloat16 and all(p.grad.dtype == torch.float32 for p in mixed.parameters())
    assert (logits.float() - reference).abs().mean() < 0.05 * reference.abs().mean()


def test_builds_on_meta_device_then_initialises():
    with torch.device("meta"):
        model = Transformer(get_preset("tiny"))
    model.to_empty(device="cpu")
    torch.manual_seed(0)
    model.init_weights()
    assert torch.isfinite(model(random_tokens(512, 1, 20))).all()


def test_model_args_are_keyword_only():
    with pytest.raises(TypeError):
        ModelArgs(512, 128)  # noqa


def test_initial_loss_is_uniform_and_a_fixed_batch_can_be_learned():
    model = tiny_model(seed=11)
    tokens = random_tokens(model.args.vocab_size, 4, 33, seed=12)
    with torch.no_grad():
        initial = _loss(model, tokens).item()
    # small init -> near-uniform predictions: cross-entropy ln(V) (+ 0.01 * aux loss ~ 0.01 * top_k)
    assert initial == pytest.approx(math.log(model.args.vocab_size) + 0.02, abs=0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        opt.zero_grad()
        loss = _loss(model, tokens)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * initial


@pytest.mark.parametrize("chunk", [0, 7, 64])
def test_token_losses_in_chunks_equal_the_whole_head(chunk):
    """labels_BT gives the per-token cross-entropy; chunked (each chunk's logits recomputed in the
    backward) the losses and every gradient equal the logits path."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    model = Transformer(get_preset("tiny"))
    model.init_weights()
    tokens = torch.randint(0, model.args.vocab_size, (2, 21))
    labels = torch.randint(0, model.args.vocab_size, (2, 21))
    logits = model(tokens)
    model.moe_aux()
    want = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(2, 21)
    want.sum().backward()
    want_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    got = model(tokens, labels_BT=labels, loss_chunk_tokens=chunk)
    model.moe_aux()
    got.sum().backward()
    assert got.shape == (2, 21) and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, want_grads[n], atol=1e-6, rtol=1e-5), n
