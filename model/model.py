"""GPT-OSS decoder in plain PyTorch: embeddings -> n_layers x (RMSNorm -> sink attention -> residual,
RMSNorm -> top-k MoE -> residual) -> RMSNorm -> unembedding. Layers alternate sliding-window and full
causal attention (`ModelArgs.layer_types`). Logits equal HF `GptOssForCausalLM` (see tests/model).

Interfaces for the trainer:
- `Transformer(args)` builds uninitialised weights (meta-device friendly); call `init_weights()`, or fill
  any slice of any parameter with `initial_values(model.init_rule(name), ...)` (layout-independent).
- `forward(tokens_BT) -> logits (B, T, V)`; `forward_with_aux(tokens_BT) -> (logits, MoEAux)` adds the
  load-balancing loss (mean over layers) and the per-layer expert slot counts (L, E).
- `set_rope(yarn_factor=..., original_context=...)` switches YaRN at a phase boundary, no new weights.
- Parallelism is applied from outside: see the docstrings of `model/attention.py` (TP) and
  `model/moe.py` (the experts contract for EP).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.args import SLIDING, ModelArgs
from model.attention import Attention
from model.moe import MoE
from model.mxfp4 import MXFP4Experts
from model.rope import RotaryEmbedding


class RMSNorm(nn.Module):
    """x / rms(x) * weight in float32, cast back to x's dtype (as HF GptOss)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * x32).to(x.dtype)


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs, layer_id: int, *, mxfp4_experts: bool = False):
        super().__init__()
        self.layer_id = layer_id
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args, sliding=args.layer_types[layer_id] == SLIDING)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.moe = MoE(args, experts=MXFP4Experts(args) if mxfp4_experts else None)

    def forward(self, x_BTD: torch.Tensor, cos_TF: torch.Tensor, sin_TF: torch.Tensor,
                positions_T: torch.Tensor, cache=None) -> torch.Tensor:
        x_BTD = x_BTD + self.attention(self.attention_norm(x_BTD), cos_TF, sin_TF, positions_T, cache)
        return x_BTD + self.moe(self.ffn_norm(x_BTD))


@dataclass
class MoEAux:
    aux_loss: torch.Tensor  # scalar, mean over layers of the per-layer load-balancing loss
    aux_loss_per_sequence: torch.Tensor  # (B,), mean over layers of each sequence's own loss
    tokens_per_expert: torch.Tensor  # (L, E) int64, (token, choice) slots each expert received


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs, *, mxfp4_experts: bool = False):
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.rope = RotaryEmbedding(args)
        self.layers = nn.ModuleList(
            TransformerBlock(args, i, mxfp4_experts=mxfp4_experts) for i in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)

    def forward(self, tokens_BT: torch.Tensor, *, cache=None, positions_T: torch.Tensor | None = None,
                labels_BT: torch.Tensor | None = None, loss_chunk_tokens: int = 0) -> torch.Tensor:
        """Logits (B, T, V). With `cache` (a KVCache per layer, model/generate.py) the tokens continue
        the cached positions, and the cache takes their keys/values. `positions_T` (default 0..T-1, or
        continuing the cache) places the tokens in their sequence, e.g. a context-parallel slice.
        With `labels_BT`: the per-token cross-entropy (B, T) float32 instead of the logits, computed
        `loss_chunk_tokens` tokens at a time when > 0 (see `token_losses`)."""
        T = tokens_BT.shape[1]
        if positions_T is None:
            start = 0 if cache is None else cache[0].length
            positions_T = torch.arange(start, start + T, device=tokens_BT.device)
        cos_TF, sin_TF = self.rope(positions_T)
        h_BTD = self.tok_embeddings(tokens_BT)
        for layer in self.layers:
            layer.moe.keep_aux = True
        for i, layer in enumerate(self.layers):
            h_BTD = layer(h_BTD, cos_TF, sin_TF, positions_T, None if cache is None else cache[i])
        if labels_BT is None:
            return self.output(self.norm(h_BTD))
        return token_losses(self.norm(h_BTD), self.output.weight, labels_BT, chunk_tokens=loss_chunk_tokens)

    def forward_with_aux(self, tokens_BT: torch.Tensor, **kwargs) -> tuple[torch.Tensor, MoEAux]:
        logits = self.forward(tokens_BT, **kwargs)
        return logits, self.moe_aux()

    def moe_aux(self) -> MoEAux:
        """The MoE statistics of the last forward, taken: the layers let go of their losses and keep
        none until the next forward. A block recomputed in the backward (activation checkpointing) runs
        its MoE again; a loss stored then would hold the recomputed graph into the next step."""
        moes = [layer.moe for layer in self.layers]
        per_sequence = moes[0].aux_loss_per_sequence
        for m in moes[1:]:  # summed layer after layer (a fixed order: the same bits however called)
            per_sequence = per_sequence + m.aux_loss_per_sequence
        aux = MoEAux(aux_loss=torch.stack([m.aux_loss for m in moes]).mean(),
                     aux_loss_per_sequence=per_sequence / len(moes),
                     tokens_per_expert=torch.stack([m.tokens_per_expert for m in moes]))
        for m in moes:
            m.keep_aux, m.aux_loss, m.aux_loss_per_sequence = False, None, None
        return aux

    def set_rope(self, *, yarn_factor: float, original_context: int) -> None:
        """Switch YaRN settings (phase boundary): updates `args` (so a saved config says so) and
        recomputes the rotary frequencies; no weight changes. yarn_factor 1.0 = plain RoPE."""
        self.args = dataclasses.replace(self.args, yarn_factor=yarn_factor, yarn_original_context=original_context)
        self.rope.configure(self.args)

    def init_rule(self, name: str) -> tuple[str, float]:
        """How parameter `name` starts: ("normal", std), ("zeros", 0) or ("ones", 0). Normal(0, init_std)
        matrices and embeddings, zero biases and sinks, unit norms; the two projections writing into the
        residual stream (o_proj, experts' down_proj) get std / sqrt(2 * n_layers) (GPT-2) so the residual
        variance does not grow with depth."""
        if name.endswith("norm.weight"):
            return "ones", 0.0
        if name.endswith("bias") or name.endswith("sinks"):
            return "zeros", 0.0
        if name.endswith("_blocks") or name.endswith("_scales"):
            raise ValueError("init_weights: MXFP4 experts are loaded, not initialised; "
                             "initialise a float model and quantize it")
        out = name.endswith("attention.o_proj.weight") or name.endswith("experts.down_proj")
        return "normal", self.args.init_std / (math.sqrt(2 * self.args.n_layers) if out else 1.0)

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """Every parameter from `initial_values` (seed None: one drawn from torch's global RNG, so
        `torch.manual_seed(s); init_weights()` is reproducible)."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        for name, p in self.named_parameters():
            p.copy_(initial_values(self.init_rule(name), name, tuple(p.shape), seed))


def token_losses(h_BTD: torch.Tensor, weight_VD: torch.Tensor, labels_BT: torch.Tensor, *,
                 chunk_tokens: int = 0) -> torch.Tensor:
    """Cross-entropy of every token (B, T) float32 from the final hidden states and the unembedding.
    chunk_tokens > 0: the logits of `chunk_tokens` tokens at a time, each chunk checkpointed, so the
    (tokens x vocab) logits never exist at once (at 131k tokens and gpt-oss's 201k vocabulary they would
    take ~50 GB in bf16, twice that in float32); the backward computes each chunk's logits again. The
    same ops on the same rows as the unchunked path."""
    B, T, D = h_BTD.shape
    h_ND, labels_N = h_BTD.reshape(-1, D), labels_BT.reshape(-1)
    if chunk_tokens <= 0 or h_ND.shape[0] <= chunk_tokens:
        return _chunk_losses(h_ND, weight_VD, labels_N).view(B, T)
    from torch.utils.checkpoint import checkpoint
    chunks = [checkpoint(_chunk_losses, h, weight_VD, y, use_reentrant=False)
              for h, y in zip(h_ND.split(chunk_tokens), labels_N.split(chunk_tokens))]
    return torch.cat(chunks).view(B, T)


def _chunk_losses(h_ND: torch.Tensor, weight_VD: torch.Tensor, labels_N: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(F.linear(h_ND, weight_VD).float(), labels_N, reduction="none")


def initial_values(rule: tuple[str, float], name: str, shape: tuple[int, ...], seed: int,
                   offsets: tuple[int, ...] | None = None, region: tuple[int, ...] | None = None) -> torch.Tensor:
    """The region [offsets, offsets + region) of parameter `name`'s initial value (global `shape`), float32
    on CPU. Each parameter draws from its own generator seeded by (seed, name), and an expert tensor
    (3-D, experts first) from one per expert, so a slice is the same numbers however the model is split
    and only the experts a rank holds are ever drawn."""
    offsets = offsets or (0,) * len(shape)
    region = region or shape
    kind, std = rule
    if kind != "normal":
        return torch.full(region, 1.0 if kind == "ones" else 0.0)
    inner = tuple(slice(o, o + n) for o, n in zip(offsets[1:], region[1:]))
    if len(shape) == 3:
        return torch.stack([_normal(f"{name}/{e}", shape[1:], seed, std)[inner]
                            for e in range(offsets[0], offsets[0] + region[0])]) if region[0] else torch.empty(region)
    return _normal(name, shape, seed, std)[(slice(offsets[0], offsets[0] + region[0]), *inner)].clone()


def _normal(key: str, shape: tuple[int, ...], seed: int, std: float) -> torch.Tensor:
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.empty(shape).normal_(0.0, std, generator=gen)
