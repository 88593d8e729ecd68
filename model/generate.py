"""Autoregressive sampling with a per-layer KV cache; sliding layers keep a ring buffer of `window` slots.

`model(tokens, cache=caches)` feeds the next T tokens of every sequence (all sequences in a batch are at
the same position; no padding) and appends their keys/values. Full layers keep every position; a
sliding layer only ever needs the last `window` keys, so it attends over [ring, this step's keys] and
then writes the newest `window` of them into slots `position % window`.
"""
from __future__ import annotations

import torch

from model.model import Transformer


class KVCache:
    def __init__(self, *, capacity: int, window: int | None):
        self.window = window
        self.capacity = capacity if window is None else window
        self.length = 0  # positions seen so far; the next token's position
        self.k = self.v = self.positions = None  # allocated on first use, shaped like the keys given

    def update(self, k_BKTD: torch.Tensor, v_BKTD: torch.Tensor, positions_T: torch.Tensor):
        """Add this step's keys/values; returns (keys, values, key positions) to attend over."""
        B, K, T, Dh = k_BKTD.shape
        if self.k is None:
            self.k = k_BKTD.new_zeros(B, K, self.capacity, Dh)
            self.v = v_BKTD.new_zeros(B, K, self.capacity, Dh)
            self.positions = torch.full((self.capacity,), -1, dtype=torch.long, device=k_BKTD.device)
        start, end = self.length, self.length + T
        if self.window is None and end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions > capacity {self.capacity}")
        self.length = end
        if self.window is None:
            self.k[:, :, start:end], self.v[:, :, start:end] = k_BKTD, v_BKTD
            self.positions[start:end] = positions_T
            return self.k[:, :, :end], self.v[:, :, :end], self.positions[:end]
        keys = torch.cat([self.k, k_BKTD], dim=2)
        values = torch.cat([self.v, v_BKTD], dim=2)
        key_positions = torch.cat([self.positions, positions_T])
        newest = slice(max(0, T - self.window), T)  # older ones would be overwritten anyway
        slots = positions_T[newest] % self.window
        self.k[:, :, slots], self.v[:, :, slots] = k_BKTD[:, :, newest], v_BKTD[:, :, newest]
        self.positions[slots] = positions_T[newest]
        return keys, values, key_positions


def new_caches(model: Transformer, max_len: int) -> list[KVCache]:
    return [KVCache(capacity=max_len, window=layer.attention.sliding_window) for layer in model.layers]


def sample_next(logits_BV: torch.Tensor, *, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
    """(B,) next tokens: argmax when temperature is 0, else softmax(logits / temperature) over the top_k."""
    if temperature == 0.0:
        return logits_BV.argmax(dim=-1)
    logits = logits_BV.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: Transformer, prompt_BT: torch.Tensor, max_new_tokens: int, *, temperature: float = 0.0,
             top_k: int | None = None, generator: torch.Generator | None = None,
             eos_id: int | None = None) -> torch.Tensor:
    """prompt (B, T0) -> (B, T0 + n) with n <= max_new_tokens new tokens (fewer if every row hit eos;
    rows that finished early are padded with eos)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    was_training = model.training
    model.eval()
    caches = new_caches(model, prompt_BT.shape[1] + max_new_tokens)
    tokens = [prompt_BT]
    finished = torch.zeros(prompt_BT.shape[0], dtype=torch.bool, device=prompt_BT.device)
    logits_BV = model(prompt_BT, cache=caches)[:, -1]
    for step in range(max_new_tokens):
        next_B = sample_next(logits_BV, temperature=temperature, top_k=top_k, generator=generator)
        if eos_id is not None:
            next_B = torch.where(finished, eos_id, next_B)
            finished |= next_B == eos_id
        tokens.append(next_B[:, None])
        if step == max_new_tokens - 1 or (eos_id is not None and bool(finished.all())):
            break
        logits_BV = model(next_B[:, None], cache=caches)[:, -1]
    model.train(was_training)
    return torch.cat(tokens, dim=1)
