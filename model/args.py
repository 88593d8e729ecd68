"""Model configuration: one kw_only dataclass and a registry of named presets.

Field names follow torchtitan; the Hugging Face names they map to are in `model/hf.py`
(`args_from_hf_config` / `hf_config_from_args`).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Callable

SLIDING = "sliding_attention"
FULL = "full_attention"
LAYER_TYPES = (SLIDING, FULL)


@dataclass(kw_only=True)
class ModelArgs:
    vocab_size: int
    dim: int  # residual width (HF hidden_size)
    n_layers: int
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (GQA groups)
    head_dim: int
    n_experts: int
    top_k: int  # experts active per token
    ffn_dim: int  # per-expert SwiGLU width (HF intermediate_size)
    sliding_window: int  # keys a sliding layer sees, the query's own included
    # Per layer "sliding_attention" | "full_attention"; empty = alternate, starting with sliding (as GPT-OSS).
    layer_types: tuple[str, ...] = ()
    rope_theta: float = 150_000.0
    # YaRN: factor 1.0 is plain RoPE. NTK-by-parts between beta_fast and beta_slow rotations over
    # `yarn_original_context`, plus the 0.1*ln(factor)+1 attention temperature on cos/sin.
    yarn_factor: float = 1.0
    yarn_original_context: int = 4096
    yarn_beta_fast: float = 32.0
    yarn_beta_slow: float = 1.0
    yarn_truncate: bool = False
    max_seq_len: int = 131_072  # HF max_position_embeddings; informational (RoPE is computed per position)
    norm_eps: float = 1e-5
    swiglu_alpha: float = 1.702
    swiglu_limit: float = 7.0
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "n_experts",
                     "top_k", "ffn_dim", "sliding_window", "yarn_original_context", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ModelArgs.{name}: expected a positive int, got {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"ModelArgs.n_heads ({self.n_heads}) must be a multiple of "
                             f"n_kv_heads ({self.n_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"ModelArgs.head_dim: RoPE needs an even head_dim, got {self.head_dim}")
        if self.top_k > self.n_experts:
            raise ValueError(f"ModelArgs.top_k ({self.top_k}) exceeds n_experts ({self.n_experts})")
        if self.yarn_factor < 1.0:
            raise ValueError(f"ModelArgs.yarn_factor: must be >= 1.0 (1.0 = plain RoPE), got {self.yarn_factor}")
        if not self.layer_types:
            self.layer_types = tuple(SLIDING if i % 2 == 0 else FULL for i in range(self.n_layers))
        self.layer_types = tuple(self.layer_types)
        if len(self.layer_types) != self.n_layers:
            raise ValueError(f"ModelArgs.layer_types: {len(self.layer_types)} entries for "
                             f"n_layers={self.n_layers}")
        for t in self.layer_types:
            if t not in LAYER_TYPES:
                raise ValueError(f"ModelArgs.layer_types: unknown {t!r}, expected one of {LAYER_TYPES}")


# ---- presets: one registry, shared constants ----------------------------------------------------

PRESETS: dict[str, Callable[[], ModelArgs]] = {}


def _preset(name: str):
    def register(fn: Callable[[], ModelArgs]) -> Callable[[], ModelArgs]:
        PRESETS[name] = fn
        return fn
    return register


# The published gpt-oss shapes (openai/gpt-oss-20b and -120b config.json); the two differ only in depth
# and expert count.
GPT_OSS_SHARED = dict(
    vocab_size=201_088, dim=2880, n_heads=64, n_kv_heads=8, head_dim=64, top_k=4, ffn_dim=2880,
    sliding_window=128, rope_theta=150_000.0, yarn_factor=32.0, yarn_original_context=4096,
    max_seq_len=131_072,
)

# Demo/test models keep GPT-OSS's structure (alternating sliding/full layers, GQA, sinks, top-k MoE)
# and plain RoPE; the trainer switches YaRN on at its phase boundary (`Transformer.set_rope`).
SMALL_SHARED = dict(yarn_factor=1.0, yarn_original_context=256, max_seq_len=4096)


@_preset("gpt-oss-120b")
def gpt_oss_120b() -> ModelArgs:
    return ModelArgs(**GPT_OSS_SHARED, n_layers=36, n_experts=128)


@_preset("gpt-oss-20b")
def gpt_oss_20b() -> ModelArgs:
    return ModelArgs(**GPT_OSS_SHARED, n_layers=24, n_experts=32)


@_preset("tiny")
def tiny() -> ModelArgs:
    """~1.9M parameters: unit tests."""
    return ModelArgs(**SMALL_SHARED, vocab_size=512, dim=128, n_layers=4, n_heads=4, n_kv_heads=2,
                     head_dim=32, n_experts=8, top_k=2, ffn_dim=128, sliding_window=16)


@_preset("small")
def small() -> ModelArgs:
    """The CPU demo: a few hundred steps at seq 256 in minutes on 2 cores. vocab_size is a default;
    the trainer sets it to its tokenizer's."""
    return ModelArgs(**SMALL_SHARED, vocab_size=8192, dim=256, n_layers=4, n_heads=8, n_kv_heads=2,
                     head_dim=32, n_experts=8, top_k=2, ffn_dim=256, sliding_window=64)


def get_preset(name: str, **overrides) -> ModelArgs:
    """The named preset with `overrides` applied (unknown preset or field names are errors)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model preset {name!r}{hint}; known: {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ModelArgs)}
    for key in overrides:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown ModelArgs field {key!r}{hint}")
    if "n_layers" in overrides and "layer_types" not in overrides:
        overrides = {**overrides, "layer_types": ()}  # re-derive the alternation for the new depth
    args = PRESETS[name]()
    return dataclasses.replace(args, **overrides) if overrides else args
