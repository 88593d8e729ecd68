"""Rotary position embedding with YaRN scaling, computed in float32.

YaRN (arXiv 2309.00071) = NTK-by-parts: frequency bands that turn more than `beta_fast` times over the
original context keep their frequency, bands that turn fewer than `beta_slow` times are divided by
`factor`, and bands in between ramp linearly. cos/sin are multiplied by the attention temperature
`0.1 * ln(factor) + 1`, which scales the q.k logits by its square. Matches HF `rope_type="yarn"`.

Rotation is "half split" (as HF GptOss): the first Dh/2 lanes pair with the last Dh/2.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from model.args import ModelArgs


def yarn_inv_freq(*, head_dim: int, theta: float, factor: float, original_context: int,
                  beta_fast: float, beta_slow: float, truncate: bool) -> tuple[torch.Tensor, float]:
    """(inverse frequencies (head_dim/2,) float32 on CPU, attention temperature)."""
    lanes = torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu")
    base_freq = theta ** (lanes / head_dim)  # (Dh/2,)
    inv_freq_extrapolated = 1.0 / base_freq
    if factor == 1.0:
        return inv_freq_extrapolated, 1.0
    inv_freq_interpolated = 1.0 / (factor * base_freq)

    def lane_for_rotations(n_rotations: float) -> float:
        # the (fractional) lane whose wavelength fits n_rotations times into the original context
        return head_dim * math.log(original_context / (n_rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = lane_for_rotations(beta_fast), lane_for_rotations(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001  # avoid 0/0 in the ramp
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32, device="cpu") - low) / (high - low)).clamp(0, 1)
    keep_weight = 1 - ramp  # 1: high-frequency lanes keep their frequency; 0: fully interpolated
    inv_freq = inv_freq_interpolated * (1 - keep_weight) + inv_freq_extrapolated * keep_weight
    return inv_freq, 0.1 * math.log(factor) + 1.0


class RotaryEmbedding(nn.Module):
    """Holds the inverse frequencies (a plain float32 tensor, not a buffer, so `model.to(bf16)` cannot
    round it) and turns positions into (cos, sin)."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.configure(args)

    def configure(self, args: ModelArgs) -> None:
        """(Re)compute the frequencies from `args` (weights untouched; used at phase boundaries)."""
        self.head_dim, self.theta = args.head_dim, args.rope_theta
        self.factor, self.original_context = args.yarn_factor, args.yarn_original_context
        self.inv_freq, self.attention_scale = yarn_inv_freq(
            head_dim=args.head_dim, theta=args.rope_theta, factor=args.yarn_factor,
            original_context=args.yarn_original_context, beta_fast=args.yarn_beta_fast,
            beta_slow=args.yarn_beta_slow, truncate=args.yarn_truncate)

    def forward(self, positions_T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (T,) int -> cos, sin (T, Dh/2) float32, temperature folded in."""
        if self.inv_freq.device != positions_T.device:
            self.inv_freq = self.inv_freq.to(positions_T.device)
        angles_TF = positions_T.float()[:, None] * self.inv_freq[None, :]
        return angles_TF.cos() * self.attention_scale, angles_TF.sin() * self.attention_scale

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, theta={self.theta}, yarn_factor={self.factor}, " \
               f"original_context={self.original_context}"


def apply_rotary(x_BTHD: torch.Tensor, cos_TF: torch.Tensor, sin_TF: torch.Tensor) -> torch.Tensor:
    """Rotate (B, T, H, Dh) by per-position angles; float32 math, result in x's dtype."""
    x1, x2 = x_BTHD.float().chunk(2, dim=-1)  # (B, T, H, Dh/2) each
    cos, sin = cos_TF[:, None, :], sin_TF[:, None, :]  # broadcast over heads
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return rotated.to(x_BTHD.dtype)
