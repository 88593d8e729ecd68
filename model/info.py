"""Sizes from shapes alone (nothing is instantiated): parameters total / active per token, weight bytes
with MXFP4 experts, KV-cache bytes for a context.

    python -m model.info --preset gpt-oss-120b [--context 131072] [--json]

"Active" follows OpenAI's gpt-oss model card: the parameters a token's forward multiplies with, i.e.
everything except the embedding table (a lookup) and the experts the router did not pick.
"""
from __future__ import annotations

import argparse
import json
import sys

from model.args import FULL, PRESETS, ModelArgs, get_preset
from model.mxfp4 import BLOCK_SIZE

MXFP4_BITS = 4 + 8 / BLOCK_SIZE  # 4-bit code + one 8-bit scale per 32 values = 4.25


def param_counts(args: ModelArgs) -> dict[str, int]:
    D, V, E, F, L = args.dim, args.vocab_size, args.n_experts, args.ffn_dim, args.n_layers
    q_width, kv_width = args.n_heads * args.head_dim, args.n_kv_heads * args.head_dim
    attention = (D * q_width + q_width) + 2 * (D * kv_width + kv_width) + (q_width * D + D) + args.n_heads
    expert_matrices = D * 2 * F + F * D
    expert_biases = 2 * F + D
    counts = {
        "embedding": V * D,
        "unembedding": V * D,
        "attention": L * attention,
        "router": L * (D * E + E),
        "expert_matrices": L * E * expert_matrices,
        "expert_biases": L * E * expert_biases,
        "norms": L * 2 * D + D,
    }
    total = sum(counts.values())
    inactive_experts = L * (E - args.top_k) * (expert_matrices + expert_biases)
    counts["total"] = total
    counts["active"] = total - counts["embedding"] - inactive_experts
    return counts


def weight_bytes(args: ModelArgs, *, mxfp4_experts: bool = True, other_bytes: int = 2) -> int:
    """Expert matrices at 4.25 bits (or `other_bytes` each when not MXFP4); everything else, expert
    biases included, at `other_bytes` (bf16 = 2)."""
    c = param_counts(args)
    experts = c["expert_matrices"] * (MXFP4_BITS / 8 if mxfp4_experts else other_bytes)
    return int(experts + (c["total"] - c["expert_matrices"]) * other_bytes)


def kv_cache_bytes(args: ModelArgs, context: int, *, dtype_bytes: int = 2) -> int:
    """Keys + values for one sequence of `context` tokens; sliding layers hold at most `sliding_window`."""
    per_token_per_layer = 2 * args.n_kv_heads * args.head_dim * dtype_bytes
    tokens_held = sum(context if t == FULL else min(context, args.sliding_window) for t in args.layer_types)
    return per_token_per_layer * tokens_held


def summary(args: ModelArgs, context: int) -> dict:
    c = param_counts(args)
    kv = kv_cache_bytes(args, context)
    return {
        "params_total": c["total"], "params_active": c["active"],
        "weights_bytes_mxfp4_experts": weight_bytes(args, mxfp4_experts=True),
        "weights_bytes_bf16": weight_bytes(args, mxfp4_experts=False),
        "kv_context": context, "kv_bytes_total": kv, "kv_bytes_per_token": kv / context,
        "param_breakdown": c,
    }


def _human(n: float, unit: str) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {prefix}{unit}"
    return f"{n:,.0f} {unit}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.info", description=__doc__.splitlines()[0])
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--context", type=int, default=None, help="tokens for the KV-cache figure (default: max_seq_len)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = p.parse_args(argv)
    args = get_preset(a.preset)
    context = a.context or args.max_seq_len
    if context < 1:
        p.error(f"--context must be >= 1, got {context}")
    s = summary(args, context)
    if a.json:
        print(json.dumps({"preset": a.preset, **s}, indent=2))
        return 0
    from common.progress import print_table
    rows = [
        {"quantity": "parameters, total", "value": _human(s["params_total"], "")},
        {"quantity": "parameters, active per token", "value": _human(s["params_active"], "")},
        {"quantity": "weights, MXFP4 experts + bf16 rest", "value": _human(s["weights_bytes_mxfp4_experts"], "B")},
        {"quantity": "weights, all bf16", "value": _human(s["weights_bytes_bf16"], "B")},
        {"quantity": f"KV cache (bf16) for {context:,} tokens", "value": _human(s["kv_bytes_total"], "B")},
        {"quantity": "KV cache per token (average)", "value": _human(s["kv_bytes_per_token"], "B")},
    ]
    print_table(rows, title=f"model {a.preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
