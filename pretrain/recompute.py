"""Activation recompute per transformer block, applied from outside (`train.activation_checkpoint`).

- "none": autograd keeps every activation of every block.
- "full": a block keeps only its input; its forward runs again in the backward pass (~1/3 more compute).
- "selective": inside each block, the attention and the experts are checkpointed with a policy (torch's
  selective activation checkpoint) that keeps the outputs of the expensive ops (matmuls, grouped expert
  matmuls, the attention kernel, the all-to-all) and recomputes the cheap elementwise ones (RoPE, the
  sink lanes, SwiGLU, bias adds, the token permutations); norms and routing keep their activations.
  The regions stop at the experts' forward, so FSDP's hooks on the experts (which all-gather again in
  the backward) stay outside them. Measured with `bench/memory.py` and `bench/train.py --recompute`
  (numbers in pretrain/README.md).

Losses and gradients equal the "none" run: the recomputed ops see the same inputs and run the same
kernels (routing is recomputed from saved router logits or recomputed bit-identically). The block's
own `forward` is wrapped, so parameter names and the model code are untouched.
"""
from __future__ import annotations

import functools

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

MODES = ("none", "full", "selective")


def _save_list() -> set:
    aten, ops = torch.ops.aten, []
    for name in ("mm", "addmm", "bmm", "_grouped_mm", "_scaled_dot_product_flash_attention",
                 "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
                 "_scaled_dot_product_cudnn_attention", "linear"):
        if hasattr(aten, name):
            ops.append(getattr(aten, name).default)
    functional = getattr(torch.ops, "_c10d_functional", None)
    for name in ("all_to_all_single", "all_reduce", "wait_tensor"):
        if functional is not None and hasattr(functional, name):
            ops.append(getattr(functional, name).default)
    return set(ops)


def _policy(saved: set):
    def policy(ctx, op, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if op in saved else CheckpointPolicy.PREFER_RECOMPUTE
    return policy


def _checkpointed(forward, mode: str, *args, **kwargs):
    if mode == "full":
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    context_fn = functools.partial(create_selective_checkpoint_contexts, _policy(_save_list()))
    return checkpoint(forward, *args, use_reentrant=False, context_fn=context_fn, **kwargs)


def apply_recompute(model: torch.nn.Module, mode: str) -> None:
    """Wrap each of `model.layers` (the transformer blocks) per `mode`; applying it again switches modes."""
    if mode not in MODES:
        raise ValueError(f"train.activation_checkpoint: expected one of {MODES}, got {mode!r}")
    for block in model.layers:
        modules = (block, block.attention, block.moe.experts)
        plain = [m.__dict__.setdefault("_plain_forward", m.forward) for m in modules]
        for m, forward in zip(modules, plain):
            m.forward = forward
        if mode == "full":
            block.forward = functools.partial(_checkpointed, plain[0], mode)
        elif mode == "selective":
            for m, forward in zip(modules[1:], plain[1:]):
                m.forward = functools.partial(_checkpointed, forward, mode)
