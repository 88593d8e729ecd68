"""MoE against a per-token float64 reference (values, gradients, the SwiGLU clamp), the experts contract,
and the load-balancing loss against transformers'."""
from __future__ import annotations

import copy

import torch

from model import get_preset
from model.moe import MoE, grouped_matmul, load_balancing_losses

ARGS = get_preset("tiny", dim=32, ffn_dim=16, n_experts=4, top_k=2)


def make_moe(dtype, seed=0, scale=0.6) -> MoE:
    torch.manual_seed(seed)
    moe = MoE(ARGS).to(dtype)
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0, scale)  # large enough that some gate/up pre-activations pass the clamp at 7
    return moe


def reference_moe(moe: MoE, x_ND: torch.Tensor) -> torch.Tensor:
    """Token by token, expert by expert, straight from the GPT-OSS definition."""
    ex = moe.experts
    logits = x_ND @ moe.router.weight.T + moe.router.bias
    rows = []
    for n in range(x_ND.shape[0]):
        top = torch.topk(logits[n], moe.top_k)
        weights = torch.softmax(top.values, dim=-1)
        acc = torch.zeros_like(x_ND[n])
        for w, e in zip(weights, top.indices):
            h = x_ND[n] @ ex.gate_up_proj[e] + ex.gate_up_proj_bias[e]
            gate, up = h[0::2].clamp(max=7.0), h[1::2].clamp(min=-7.0, max=7.0)
            act = (up + 1) * gate * torch.sigmoid(1.702 * gate)
            acc = acc + w * (act @ ex.down_proj[e] + ex.down_proj_bias[e])
        rows.append(acc)
    return torch.stack(rows)


def test_clamp_is_exercised_by_these_weights():
    moe = make_moe(torch.float64)
    x = torch.randn(24, ARGS.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = torch.einsum("nd,edf->nef", x, moe.experts.gate_up_proj)
    assert (h.abs() > 7.0).any() and (h.abs() < 7.0).any()


def test_moe_matches_per_token_reference_with_gradients():
    ref_moe = make_moe(torch.float64)
    x = torch.randn(2, 12, ARGS.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-4)):  # float64: loop path; float32: grouped_mm
        moe = copy.deepcopy(ref_moe).to(dtype)
        xi = x.clone().to(dtype).requires_grad_()
        out = moe(xi)
        xr = x.clone().requires_grad_()
        ref = reference_moe(ref_moe, xr.view(-1, ARGS.dim)).view_as(x)
        assert (out.double() - ref).abs().max().item() < tol * ref.abs().max().item(), dtype
        upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        (out.double() * upstream).sum().backward()
        ref_moe.zero_grad()
        (ref * upstream).sum().backward()
        assert (xi.grad.double() - xr.grad).abs().max().item() < tol * xr.grad.abs().max().item(), dtype
        for (name, p), (_, pr) in zip(moe.named_parameters(), ref_moe.named_parameters()):
            assert (p.grad.double() - pr.grad).abs().max().item() < tol * pr.grad.abs().max().item(), (dtype, name)


def test_token_counts_and_aux_loss_are_exposed():
    moe = make_moe(torch.float32)
    x = torch.randn(3, 10, ARGS.dim, generator=torch.Generator().manual_seed(3))
    moe(x)
    logits = moe.router(x.view(-1, ARGS.dim))
    expected_counts = torch.bincount(torch.topk(logits, 2).indices.flatten(), minlength=ARGS.n_experts)
    assert torch.equal(moe.tokens_per_expert, expected_counts) and moe.tokens_per_expert.sum() == 30 * 2
    assert moe.aux_loss.requires_grad and moe.aux_loss.item() >= 0


def test_load_balancing_loss_equals_transformers():
    from transformers.models.gpt_oss.modeling_gpt_oss import load_balancing_loss_func

    logits = torch.randn(50, 8, generator=torch.Generator().manual_seed(4))
    counts = torch.bincount(torch.topk(logits, 2).indices.flatten(), minlength=8)
    expected = load_balancing_loss_func((logits,), num_experts=8, top_k=2)
    whole, per_sequence = load_balancing_losses(logits.view(1, 50, 8), counts, 2)
    assert torch.allclose(whole, expected, rtol=1e-6) and torch.allclose(per_sequence, expected[None], rtol=1e-6)
    uniform = torch.zeros(2, 32, 8)  # perfectly balanced counts, uniform probabilities -> top_k
    assert load_balancing_losses(uniform, torch.full((8,), 16), 2)[0].item() == 2.0


def test_load_balancing_losses_from_split_sequences_equal_whole():
    """Token sums reduced over the parts of split sequences (context parallel) give the whole loss."""
    logits = torch.randn(3, 40, 8, generator=torch.Generator().manual_seed(5))
    counts = lambda x: torch.bincount(torch.topk(x, 2).indices.flatten(), minlength=8)
    whole = load_balancing_losses(logits, counts(logits), 2)
    parts = [logits[:, :16], logits[:, 16:]]
    sums = []
    def collect(t):  # stand-in for the all-reduce: record the first part's sums, add them to the second's
        sums.append(t)
        return t if len(sums) == 1 else t + sums[0]
    load_balancing_losses(parts[0], counts(parts[0]), 2, collect)
    split = load_balancing_losses(parts[1], counts(parts[1]), 2, collect)
    assert torch.allclose(split[0], whole[0], rtol=1e-6) and torch.allclose(split[1], whole[1], rtol=1e-6)


def test_experts_contract_holds_for_a_slice_of_the_experts():
    """What expert parallelism relies on: experts [0, 2) and [2, 4) run separately on their rows with
    local counts give the rows the whole module gives."""
    moe = make_moe(torch.float32)
    counts = torch.tensor([5, 0, 7, 4])  # an expert with no tokens too
    x_sorted = torch.randn(int(counts.sum()), ARGS.dim, generator=torch.Generator().manual_seed(5))
    full = moe.experts(x_sorted, counts)
    halves = []
    for lo, hi in ((0, 2), (2, 4)):
        part = copy.deepcopy(moe.experts)
        for name, p in list(part.named_parameters()):
            setattr(part, name, torch.nn.Parameter(p[lo:hi].clone()))
        rows = slice(int(counts[:lo].sum()), int(counts[:hi].sum()))
        halves.append(part(x_sorted[rows], counts[lo:hi]))
    assert torch.allclose(torch.cat(halves), full, atol=1e-6)


def test_grouped_matmul_paths_agree_including_backward():
    g = torch.Generator().manual_seed(6)
    counts = torch.tensor([3, 0, 9, 1])
    x = torch.randn(13, 16, generator=g, dtype=torch.float64)
    w = torch.randn(4, 16, 8, generator=g, dtype=torch.float64)
    xs, ws = [x.clone().requires_grad_() for _ in range(2)], [w.clone().requires_grad_() for _ in range(2)]
    fast = grouped_matmul(xs[0].float(), ws[0].float(), counts)  # grouped_mm kernel
    slow = grouped_matmul(xs[1], ws[1], counts)  # per-expert loop (float64 has no grouped kernel)
    assert (fast.double() - slow).abs().max().item() < 1e-5
    fast.sum().backward()  # a stride-0 gradient, which grouped_mm's backward rejects unwrapped
    slow.sum().backward()
    assert (xs[0].grad - xs[1].grad).abs().max().item() < 1e-5
    assert (ws[0].grad - ws[1].grad).abs().max().item() < 1e-5
