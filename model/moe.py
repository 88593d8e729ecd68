"""Top-k mixture of experts (GPT-OSS): router with bias, softmax over the selected logits, clamped SwiGLU
experts with biases run as grouped matmuls over tokens sorted by expert.

Contract of the experts submodule (what an expert-parallel wrapper may rely on and must keep):
    `MoE.experts.forward(x_sorted_ND, counts_E) -> y_sorted_ND`
    - `x_sorted_ND` (N, D): one row per (token, choice) slot, grouped by expert id ascending; within an
      expert, slots keep token order. N = sum(counts_E).
    - `counts_E` (E,) int64 on x's device: rows per expert, for the E experts this module holds.
    - returns (N, D) in the same row order, *not* weighted by the router (MoE.forward applies weights).
    Parameters (E = experts held): `gate_up_proj` (E, D, 2F) with gate/up interleaved along the last dim
    (column 2j is gate j, 2j+1 is up j; the HF layout), `gate_up_proj_bias` (E, 2F), `down_proj` (E, F, D),
    `down_proj_bias` (E, D). E is read from the tensors, so a wrapper can hold a slice of the experts and
    do the all-to-all dispatch around this call with local counts.

After each forward, `MoE.aux_loss` (scalar, differentiable) holds the load-balancing loss over the
micro-batch, `MoE.aux_loss_per_sequence` (B,) the same per sequence, and `MoE.tokens_per_expert` (E,)
int64 the slot counts (of this module's tokens); `Transformer.moe_aux` takes them (and sets `keep_aux` False until the model's
next forward, so a recomputed forward in the backward stores no loss).
Both losses are built from token sums (slots and router probabilities per expert, and token counts);
`MoE.reduce_token_sums` (default None) may sum them, differentiably, over the ranks that hold the other
tokens of the same sequences (context parallel), so the loss is the one of the whole sequences.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.args import ModelArgs


class MoE(nn.Module):
    def __init__(self, args: ModelArgs, *, experts: nn.Module | None = None):
        super().__init__()
        self.n_experts, self.top_k = args.n_experts, args.top_k
        self.router = nn.Linear(args.dim, args.n_experts, bias=True)
        self.experts = experts if experts is not None else GroupedExperts(args)
        self.aux_loss: torch.Tensor | None = None
        self.aux_loss_per_sequence: torch.Tensor | None = None
        self.tokens_per_expert: torch.Tensor | None = None
        self.keep_aux = True
        self.reduce_token_sums = None  # e.g. a differentiable all-reduce over a context-parallel group

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        B, T, D = x_BTD.shape
        x_ND = x_BTD.reshape(-1, D)
        N, K = x_ND.shape[0], self.top_k

        logits_NE = self.router(x_ND)
        top_logits_NK, top_experts_NK = torch.topk(logits_NE, K, dim=-1)
        weights_NK = F.softmax(top_logits_NK, dim=-1)  # softmax over the selected logits only

        # Group the N*K (token, choice) slots by expert; stable, so deterministic and token-ordered.
        slot_expert = top_experts_NK.reshape(-1)  # (N*K,)
        order = torch.argsort(slot_expert, stable=True)
        counts_E = torch.bincount(slot_expert, minlength=self.n_experts)
        y_sorted = self.experts(x_ND[order // K], counts_E)  # (N*K, D)
        y_NKD = y_sorted[torch.argsort(order)].view(N, K, D)  # back to slot order
        out_ND = (y_NKD * weights_NK.to(y_NKD.dtype)[..., None]).sum(dim=1)

        # computed always (a recomputed forward must save what the first one saved), kept only until taken
        aux_loss, aux_loss_per_sequence = load_balancing_losses(logits_NE.view(B, T, -1), counts_E, K,
                                                                self.reduce_token_sums)
        if self.keep_aux:
            self.aux_loss, self.aux_loss_per_sequence = aux_loss, aux_loss_per_sequence
        self.tokens_per_expert = counts_E.detach()
        return out_ND.view(B, T, D)


def load_balancing_losses(logits_BTE: torch.Tensor, counts_E: torch.Tensor, top_k: int,
                          reduce_token_sums=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Switch-style E * sum_e f_e * P_e: f_e = slots routed to e per token (sums to top_k, as HF),
    P_e = mean router probability of e over all experts; balanced routing gives top_k. Returns (the
    loss over all tokens of the micro-batch, (B,) the loss over each sequence's own tokens, which does
    not depend on how sequences are grouped into micro-batches or data-parallel ranks).
    `reduce_token_sums` sums the (rows, E + 1) token sums over ranks holding other parts of the sequences."""
    B, T, E = logits_BTE.shape
    probs_BTE = F.softmax(logits_BTE.float(), dim=-1)
    picks = torch.topk(logits_BTE.detach(), top_k, dim=-1).indices.view(B, -1)
    seq_counts_BE = torch.zeros(B, E, device=logits_BTE.device).scatter_add_(
        1, picks, torch.ones(picks.shape, device=logits_BTE.device))
    tokens = torch.full((B + 1, 1), float(T), device=logits_BTE.device)
    tokens[B] = B * T
    counts = torch.cat([seq_counts_BE, counts_E.float()[None]])  # (B + 1, E): sequences, then all
    prob_sums = torch.cat([probs_BTE.sum(dim=1), probs_BTE.sum(dim=(0, 1))[None]])
    if reduce_token_sums is not None:
        sums = reduce_token_sums(torch.cat([counts, prob_sums, tokens], dim=-1))
        counts, prob_sums, tokens = sums[:, :E], sums[:, E:2 * E], sums[:, 2 * E:]
    losses = E * ((counts / tokens) * (prob_sums / tokens)).sum(dim=-1)
    return losses[B], losses[:B]


class GroupedExperts(nn.Module):
    """The E experts' weights; forward follows the contract in the module docstring."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        E, D, F_ = args.n_experts, args.dim, args.ffn_dim
        self.alpha, self.limit = args.swiglu_alpha, args.swiglu_limit
        self.gate_up_proj = nn.Parameter(torch.empty(E, D, 2 * F_))
        self.gate_up_proj_bias = nn.Parameter(torch.empty(E, 2 * F_))
        self.down_proj = nn.Parameter(torch.empty(E, F_, D))
        self.down_proj_bias = nn.Parameter(torch.empty(E, D))

    def forward(self, x_sorted_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        return expert_swiglu(x_sorted_ND, counts_E, self.gate_up_proj, self.gate_up_proj_bias,
                             self.down_proj, self.down_proj_bias, alpha=self.alpha, limit=self.limit)


def expert_swiglu(x_ND: torch.Tensor, counts_E: torch.Tensor, gate_up_EDF2: torch.Tensor,
                  gate_up_bias_EF2: torch.Tensor, down_EFD: torch.Tensor, down_bias_ED: torch.Tensor,
                  *, alpha: float, limit: float, reduce_partial=None) -> torch.Tensor:
    """Each row through its expert: down(swiglu(x @ gate_up + b) ) + b, rows grouped by `counts_E`.
    `reduce_partial` (optional) is applied to the down projection before its bias: a wrapper that holds
    a slice of the FFN width passes the sum of the partial products over its slices there."""
    N = x_ND.shape[0]
    h_NF2 = grouped_matmul(x_ND, gate_up_EDF2, counts_E)
    h_NF2 = h_NF2 + gate_up_bias_EF2.to(h_NF2.dtype).repeat_interleave(counts_E, dim=0, output_size=N)
    a_NF = clamped_swiglu(h_NF2, alpha=alpha, limit=limit)
    y_ND = grouped_matmul(a_NF, down_EFD, counts_E)
    if reduce_partial is not None:
        y_ND = reduce_partial(y_ND)
    return y_ND + down_bias_ED.to(y_ND.dtype).repeat_interleave(counts_E, dim=0, output_size=N)


def clamped_swiglu(h_NF2: torch.Tensor, *, alpha: float, limit: float) -> torch.Tensor:
    """GPT-OSS gate: gate clamped above at `limit`, up clamped to +-limit, (up + 1) * gate * sigmoid(alpha * gate)."""
    gate, up = h_NF2[..., 0::2], h_NF2[..., 1::2]  # interleaved columns
    gate = gate.clamp(max=limit)
    up = up.clamp(min=-limit, max=limit)
    return (up + 1) * (gate * torch.sigmoid(gate * alpha))


def grouped_matmul(x_NI: torch.Tensor, w_EIO: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
    """Rows [sum(counts[:e]), sum(counts[:e+1])) of x times w[e]: (N, I) -> (N, O)."""
    dtype = torch.get_autocast_dtype(x_NI.device.type) if torch.is_autocast_enabled(x_NI.device.type) else x_NI.dtype
    x, w = x_NI.to(dtype), w_EIO.to(dtype)
    if _grouped_mm_supported(x, w):
        offsets = torch.cumsum(counts_E, dim=0, dtype=torch.int32)
        return _ContiguousGrad.apply(_GROUPED_MM(x, w, offs=offsets))
    # Fallback: one matmul per expert (a loop over experts, never over tokens).
    chunks = torch.split(x, counts_E.tolist())
    return torch.cat([chunk @ w[e] for e, chunk in enumerate(chunks)], dim=0)


# the public name since torch 2.10; same kernel
_GROUPED_MM = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def _grouped_mm_supported(x: torch.Tensor, w: torch.Tensor) -> bool:
    if _GROUPED_MM is None:
        return False
    if x.device.type == "cpu":
        return x.dtype in (torch.float32, torch.bfloat16)
    # CUDA kernels: bf16 with 16-byte aligned rows, on sm80 or newer.
    return (x.device.type == "cuda" and x.dtype == torch.bfloat16 and x.shape[-1] % 8 == 0
            and w.shape[-1] % 8 == 0 and torch.cuda.get_device_capability(x.device) >= (8, 0))


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous: grouped_mm's backward rejects
    the stride-0 gradients that e.g. `.sum()` produces."""

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()
