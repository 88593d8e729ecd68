"""MXFP4 (OCP Microscaling) for expert weights, in the layout of the published gpt-oss checkpoints.

A block is 32 consecutive values along the contraction (input) dim: 32 FP4 E2M1 codes (1 sign bit,
magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6) sharing one E8M0 scale byte 2**(byte - 127):
32 * 4 + 8 bits = 4.25 bits per value. Two codes per byte, the even element in the low nibble.

Shared exponent, as the OCP MX spec: floor(log2(max|x|)) - 2 (2 = E2M1's largest exponent), so the
block's largest value lands in [4, 8) and values above 6 saturate to 6; magnitudes round to nearest,
ties to the even code.

Checkpoint layout (HF GptOss names) for an expert weight stored in the model as (E, I, O) = (experts,
input, output), e.g. gate_up_proj (E, D, 2F) or down_proj (E, F, D):
    `<name>_blocks` (E, O, I/32, 16) uint8 and `<name>_scales` (E, O, I/32) uint8,
i.e. each output row of the transposed weight is cut into blocks along the input dim.
"""
from __future__ import annotations

import torch
from torch import nn

from model.args import ModelArgs
from model.moe import GroupedExperts, expert_swiglu

BLOCK_SIZE = 32
SCALE_BIAS = 127
E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # code & 7 -> magnitude; code & 8 -> sign
# Midpoints between neighbouring magnitudes; a tie goes to the even code (the lower one at 0.25, 1.25,
# 2.5, 5.0; the upper one at 0.75, 1.75, 3.5).
_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
_TIES_ROUNDING_UP = (0.75, 1.75, 3.5)


def quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., K) float -> blocks (..., K/32, 16) uint8, scales (..., K/32) uint8. K must divide by 32."""
    K = x.shape[-1]
    if K % BLOCK_SIZE:
        raise ValueError(f"MXFP4 needs the blocked dim to be a multiple of {BLOCK_SIZE}, got {K}")
    if not torch.isfinite(x).all():
        raise ValueError("MXFP4 cannot encode inf/nan (E2M1 has neither)")
    xb = x.float().reshape(*x.shape[:-1], K // BLOCK_SIZE, BLOCK_SIZE)  # (..., G, 32)
    amax = xb.abs().amax(dim=-1)  # (..., G)
    # frexp: amax = m * 2**e with m in [0.5, 1), so floor(log2(amax)) = e - 1 (exact, no log rounding)
    _, exponent = torch.frexp(amax)
    shared_exp = (exponent.to(torch.int32) - 1 - 2).clamp(-SCALE_BIAS, SCALE_BIAS)
    scaled = torch.ldexp(xb, -shared_exp[..., None].float())  # (..., G, 32), in [-8, 8)
    magnitude = scaled.abs()
    midpoints = torch.tensor(_MIDPOINTS, dtype=torch.float32, device=x.device)
    code = torch.searchsorted(midpoints, magnitude.contiguous(), right=False)  # ties -> lower code
    ties_up = torch.isin(magnitude, torch.tensor(_TIES_ROUNDING_UP, dtype=torch.float32, device=x.device))
    code = (code + ties_up.to(code.dtype)).to(torch.uint8)
    sign = ((scaled < 0) & (code > 0)).to(torch.uint8)  # no negative zero
    code = code | (sign << 3)
    packed = code[..., 0::2] | (code[..., 1::2] << 4)  # (..., G, 16): even element in the low nibble
    return packed, (shared_exp + SCALE_BIAS).to(torch.uint8)


def dequantize(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of `quantize`: blocks (..., G, 16), scales (..., G) -> (..., G*32) in `dtype`."""
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != BLOCK_SIZE // 2:
        raise ValueError(f"MXFP4 blocks {tuple(blocks.shape)} and scales {tuple(scales.shape)} do not match")
    lut = torch.tensor(E2M1_MAGNITUDES + tuple(-m for m in E2M1_MAGNITUDES), dtype=torch.float32,
                       device=blocks.device)
    codes = torch.stack([blocks & 0x0F, blocks >> 4], dim=-1).flatten(-2).long()  # (..., G, 32)
    values = torch.ldexp(lut[codes], (scales.to(torch.int32) - SCALE_BIAS)[..., None].float())
    return values.flatten(-2).to(dtype)


def pack_expert_weight(w_EIO: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model layout (E, I, O) -> checkpoint blocks (E, O, I/32, 16), scales (E, O, I/32)."""
    return quantize(w_EIO.transpose(1, 2))


def unpack_expert_weight(blocks_EOG16: torch.Tensor, scales_EOG: torch.Tensor,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Checkpoint blocks/scales -> model layout (E, I, O)."""
    return dequantize(blocks_EOG16, scales_EOG, dtype).transpose(1, 2).contiguous()


class MXFP4Experts(nn.Module):
    """GroupedExperts with the two weight matrices held packed (uint8 buffers, not trainable) and
    dequantized on the fly in each forward; biases stay float parameters. Same forward contract."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        E, D, F_ = args.n_experts, args.dim, args.ffn_dim
        for name, size in (("dim", D), ("ffn_dim", F_)):
            if size % BLOCK_SIZE:
                raise ValueError(f"ModelArgs.{name}={size}: MXFP4 experts need a multiple of {BLOCK_SIZE}")
        self.alpha, self.limit = args.swiglu_alpha, args.swiglu_limit
        u8 = dict(dtype=torch.uint8)
        self.register_buffer("gate_up_proj_blocks", torch.zeros(E, 2 * F_, D // BLOCK_SIZE, 16, **u8))
        self.register_buffer("gate_up_proj_scales", torch.zeros(E, 2 * F_, D // BLOCK_SIZE, **u8))
        self.register_buffer("down_proj_blocks", torch.zeros(E, D, F_ // BLOCK_SIZE, 16, **u8))
        self.register_buffer("down_proj_scales", torch.zeros(E, D, F_ // BLOCK_SIZE, **u8))
        self.gate_up_proj_bias = nn.Parameter(torch.empty(E, 2 * F_))
        self.down_proj_bias = nn.Parameter(torch.empty(E, D))

    @classmethod
    def from_float(cls, experts: GroupedExperts, args: ModelArgs) -> MXFP4Experts:
        packed = cls(args).to(experts.gate_up_proj_bias.device)
        with torch.no_grad():
            packed.gate_up_proj_blocks, packed.gate_up_proj_scales = pack_expert_weight(experts.gate_up_proj)
            packed.down_proj_blocks, packed.down_proj_scales = pack_expert_weight(experts.down_proj)
            packed.gate_up_proj_bias.copy_(experts.gate_up_proj_bias)
            packed.down_proj_bias.copy_(experts.down_proj_bias)
        return packed

    def dequantized(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(gate_up_proj (E, D, 2F), down_proj (E, F, D)) in `dtype`."""
        return (unpack_expert_weight(self.gate_up_proj_blocks, self.gate_up_proj_scales, dtype),
                unpack_expert_weight(self.down_proj_blocks, self.down_proj_scales, dtype))

    def forward(self, x_sorted_ND: torch.Tensor, counts_E: torch.Tensor) -> torch.Tensor:
        gate_up, down = self.dequantized(x_sorted_ND.dtype)
        return expert_swiglu(x_sorted_ND, counts_E, gate_up, self.gate_up_proj_bias, down, self.down_proj_bias,
                             alpha=self.alpha, limit=self.limit)


def quantize_experts(model: nn.Module, args: ModelArgs | None = None) -> nn.Module:
    """Replace every GroupedExperts in `model` by its MXFP4 form, in place; returns the model.
    `args` defaults to `model.args` (a Transformer's)."""
    args = args if args is not None else model.args
    for module in list(model.modules()):
        if isinstance(getattr(module, "experts", None), GroupedExperts):
            module.experts = MXFP4Experts.from_float(module.experts, args)
    return model


def dequantize_experts(model: nn.Module, args: ModelArgs | None = None,
                       dtype: torch.dtype = torch.float32) -> nn.Module:
    """Replace every MXFP4Experts by trainable GroupedExperts holding the dequantized weights, in place."""
    args = args if args is not None else model.args
    for module in list(model.modules()):
        packed = getattr(module, "experts", None)
        if isinstance(packed, MXFP4Experts):
            dense = GroupedExperts(args).to(device=packed.gate_up_proj_bias.device, dtype=dtype)
            gate_up, down = packed.dequantized(dtype)
            with torch.no_grad():
                dense.gate_up_proj.copy_(gate_up)
                dense.down_proj.copy_(down)
                dense.gate_up_proj_bias.copy_(packed.gate_up_proj_bias)
                dense.down_proj_bias.copy_(packed.down_proj_bias)
            module.experts = dense
    return model
