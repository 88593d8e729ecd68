"""Grouped-query attention with learned per-head attention sinks, on `scaled_dot_product_attention`.

A sink is one extra logit per head that every query sees and that carries no value: the softmax
becomes exp(l_j) / (sum_j exp(l_j) + exp(sink_h)), so a head can attend to (almost) nothing.

Exact sink with SDPA (which has a fused kernel and a backward on CPU and GPU): give q and k one extra
lane and prepend one virtual key whose value is zero,
    q' = [q, sink_h / scale]      k'_j = [k_j, 0]      k'_sink = [0, ..., 0, 1]      v'_sink = 0
so q'.k'_j * scale = q.k_j * scale and q'.k'_sink * scale = sink_h. The sink lane rides on the query
(per query head) and the sink key is the same for every head, so GQA (`enable_gqa`) still shares
k/v. v gets a zero lane too, because the fused kernels want equal q/k/v head dims (on CUDA the
lanes are padded with zeros to a multiple of 8 for the same reason).
For full causal layers a zero "dummy" query row is prepended as well, so SDPA's top-left
`is_causal` lines up with the shifted keys (query i sees the sink and keys 0..i) and the fused
kernel skips the masked blocks. Sliding layers compute only the band: query blocks of `window`
attend to their own and the previous key block under an explicit mask (T x 2W instead of T x T).
KV-cache steps pass an explicit mask built from the cached positions.

Tensor parallel: heads are derived from the projection sizes (`view(B, T, -1, head_dim)`), so a TP
wrapper may column-shard q/k/v_proj, row-shard o_proj and slice `sinks` to the local heads, and
divide `n_heads` / `n_kv_heads` for bookkeeping; forward reads neither.
Context parallel: a wrapper that gives each rank a slice of the sequence replaces `attend` per instance
(it gathers the keys the slice needs and calls the functions below with `query_offset`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.args import ModelArgs
from model.rope import apply_rotary


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, *, sliding: bool):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.sliding_window = args.sliding_window if sliding else None
        self.q_proj = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=True)
        self.k_proj = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=True)
        self.v_proj = nn.Linear(args.dim, args.n_kv_heads * args.head_dim, bias=True)
        self.o_proj = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=True)
        self.sinks = nn.Parameter(torch.empty(args.n_heads))  # one logit per query head

    def forward(self, x_BTD: torch.Tensor, cos_TF: torch.Tensor, sin_TF: torch.Tensor,
                positions_T: torch.Tensor, cache=None) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        q = apply_rotary(self.q_proj(x_BTD).view(B, T, -1, self.head_dim), cos_TF, sin_TF)  # (B, T, H, Dh)
        k = apply_rotary(self.k_proj(x_BTD).view(B, T, -1, self.head_dim), cos_TF, sin_TF)  # (B, T, K, Dh)
        v = self.v_proj(x_BTD).view(B, T, -1, self.head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, Dh)

        if cache is not None:  # decoding: attend over what the cache holds plus this step's keys
            k, v, key_positions_S = cache.update(k, v, positions_T)
            mask_TS = causal_mask(positions_T, key_positions_S, self.sliding_window)
            out = sink_attention(q, k, v, self.sinks, mask_TS=mask_TS)
        else:
            out = self.attend(q, k, v)  # (B, H, T, Dh)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))

    def attend(self, q_BHTD: torch.Tensor, k_BKTD: torch.Tensor, v_BKTD: torch.Tensor) -> torch.Tensor:
        """Causal sink attention of one whole sequence (the keys are the queries' own positions). A
        wrapper that splits sequences over ranks (context parallel) replaces this per instance."""
        if self.sliding_window is not None:
            return sliding_sink_attention(q_BHTD, k_BKTD, v_BKTD, self.sinks, window=self.sliding_window)
        return sink_attention(q_BHTD, k_BKTD, v_BKTD, self.sinks, mask_TS=None)


def causal_mask(q_pos_T: torch.Tensor, k_pos_S: torch.Tensor, window: int | None) -> torch.Tensor:
    """(T, S) bool, True = attend: a key at or before the query and, with a window, fewer than `window`
    positions back (HF: kv_idx > q_idx - window). Negative key positions mark empty cache slots."""
    delta = q_pos_T[:, None] - k_pos_S[None, :]
    mask = (delta >= 0) & (k_pos_S[None, :] >= 0)
    return mask if window is None else mask & (delta < window)


def sliding_sink_attention(q_BHTD: torch.Tensor, k_BKTD: torch.Tensor, v_BKTD: torch.Tensor,
                           sinks_H: torch.Tensor, *, window: int) -> torch.Tensor:
    """Causal sliding-window sink attention over one sequence, computing only the band: queries go in
    blocks of `window`, and block b needs keys from blocks b-1 and b alone (T x 2W work, not T x T)."""
    B, H, T, Dh = q_BHTD.shape
    K, W = k_BKTD.shape[1], window
    if T <= 2 * W:  # the band is most of the square anyway
        positions = torch.arange(T, device=q_BHTD.device)
        return sink_attention(q_BHTD, k_BKTD, v_BKTD, sinks_H, mask_TS=causal_mask(positions, positions, W))
    n_blocks = -(-T // W)
    pad = n_blocks * W - T  # queries past T are dropped; keys past T are in every real query's future
    q = F.pad(q_BHTD, (0, 0, 0, pad)).view(B, H, n_blocks, W, Dh).transpose(1, 2).reshape(-1, H, W, Dh)

    def block_context(x_BKTD: torch.Tensor) -> torch.Tensor:  # -> (B * n_blocks, K, 2W, Dh)
        x = F.pad(x_BKTD, (0, 0, W, pad)).view(B, K, n_blocks + 1, W, Dh)  # one zero block in front
        return torch.cat([x[:, :, :-1], x[:, :, 1:]], dim=3).transpose(1, 2).reshape(-1, K, 2 * W, Dh)

    # query i of block b sits at b*W + i; context key j at (b-1)*W + j: visible iff i < j <= i + W
    i, j = torch.arange(W, device=q.device)[:, None], torch.arange(2 * W, device=q.device)[None, :]
    mask = ((j > i) & (j <= i + W)).expand(n_blocks, W, 2 * W).clone()
    mask[0, :, :W] = False  # block 0's "previous block" is padding
    mask = mask.unsqueeze(1).repeat(B, 1, 1, 1)  # (B * n_blocks, 1, W, 2W)
    out = sink_attention(q, block_context(k_BKTD), block_context(v_BKTD), sinks_H, mask_TS=mask)
    return out.view(B, n_blocks, H, W, Dh).transpose(1, 2).reshape(B, H, n_blocks * W, Dh)[:, :, :T]


def sink_attention(q_BHTD: torch.Tensor, k_BKSD: torch.Tensor, v_BKSD: torch.Tensor, sinks_H: torch.Tensor,
                   *, mask_TS: torch.Tensor | None, query_offset: int = 0) -> torch.Tensor:
    """softmax([q.k * scale, sink]) @ [v, 0] per head. mask (..., T, S) bool, True = attend; None =
    causal, queries at key positions query_offset .. query_offset + T - 1 (S = query_offset + T)."""
    B, H, T, Dh = q_BHTD.shape
    K = k_BKSD.shape[1]
    scale = Dh ** -0.5
    extra = extended_head_dim(Dh, q_BHTD.device) - Dh  # lane Dh carries the sink, any others are zero
    sink_lane = (sinks_H.to(q_BHTD.dtype) / scale).view(1, H, 1, 1).expand(B, H, T, 1)
    q = torch.cat([q_BHTD, sink_lane], dim=-1)
    q = F.pad(q, (0, extra - 1)) if extra > 1 else q  # (B, H, T, Dh+extra)
    sink_key = q.new_zeros(B, K, 1, Dh + extra)
    sink_key[..., Dh] = 1.0
    k = torch.cat([sink_key, F.pad(k_BKSD, (0, extra))], dim=2)  # (B, K, 1+S, Dh+extra)
    v = F.pad(v_BKSD, (0, extra, 1, 0))  # (B, K, 1+S, Dh+extra): zero sink row, zero extra lanes
    if mask_TS is None and query_offset and q.device.type != "cpu":
        return lower_right_causal(q, k, v, scale)[..., :Dh]
    if mask_TS is None:  # SDPA's is_causal aligns top-left: prepend zero query rows to line queries up
        pad = 1 + query_offset  # row pad+i sees keys 0..pad+i = sink + k_0..k_{offset+i}
        q = F.pad(q, (0, 0, pad, 0))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=K != H)
        return out[:, :, pad:, :Dh]
    mask = F.pad(mask_TS, (1, 0), value=True)  # every query sees the sink
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=K != H)
    return out[..., :Dh]


def lower_right_causal(q_BHTD: torch.Tensor, k_BKSD: torch.Tensor, v_BKSD: torch.Tensor,
                       scale: float) -> torch.Tensor:
    """Causal attention aligned bottom-right (query i sees keys 0 .. S - T + i) without a mask tensor:
    torch's CausalBias dispatches to the fused kernels on CUDA (which take GQA only with the key heads
    repeated); elsewhere it materialises a (T, S) mask, which is why CPU uses zero query rows instead."""
    from torch.nn.attention.bias import causal_lower_right
    H, K = q_BHTD.shape[1], k_BKSD.shape[1]
    if K != H:
        k_BKSD, v_BKSD = k_BKSD.repeat_interleave(H // K, dim=1), v_BKSD.repeat_interleave(H // K, dim=1)
    bias = causal_lower_right(q_BHTD.shape[2], k_BKSD.shape[2])
    return F.scaled_dot_product_attention(q_BHTD, k_BKSD, v_BKSD, attn_mask=bias, scale=scale)


def extended_head_dim(head_dim: int, device: torch.device) -> int:
    """Head dim plus the sink lane; CUDA's fused SDPA kernels want a multiple of 8 (CPU's take any)."""
    return head_dim + 1 if device.type == "cpu" else -(-(head_dim + 1) // 8) * 8
