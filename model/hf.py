"""Hugging Face GptOss checkpoints <-> `Transformer`: config, one explicit key map, safetensors only.

`load(path)` reads `config.json` + `model.safetensors` (or shards listed in
`model.safetensors.index.json`); expert weights may be float (`*.experts.gate_up_proj`, ...) or MXFP4
(`*_blocks` / `*_scales`, kept packed unless `dequantize=True`). `save(model, path)` writes a directory
`transformers.GptOssForCausalLM.from_pretrained` opens (MXFP4 experts are written packed, with the
`quantization_config` the published checkpoints carry).

Every key must map, both ways: an unmapped name is an error naming it, never skipped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model.args import LAYER_TYPES, ModelArgs
from model.model import Transformer
from model.mxfp4 import MXFP4Experts, dequantize_experts

# (our name, HF name); "{i}" is the layer index. Float and MXFP4 expert weights both listed: a model
# holds one form or the other.
KEY_MAP: tuple[tuple[str, str], ...] = (
    ("tok_embeddings.weight", "model.embed_tokens.weight"),
    ("layers.{i}.attention_norm.weight", "model.layers.{i}.input_layernorm.weight"),
    ("layers.{i}.attention.q_proj.weight", "model.layers.{i}.self_attn.q_proj.weight"),
    ("layers.{i}.attention.q_proj.bias", "model.layers.{i}.self_attn.q_proj.bias"),
    ("layers.{i}.attention.k_proj.weight", "model.layers.{i}.self_attn.k_proj.weight"),
    ("layers.{i}.attention.k_proj.bias", "model.layers.{i}.self_attn.k_proj.bias"),
    ("layers.{i}.attention.v_proj.weight", "model.layers.{i}.self_attn.v_proj.weight"),
    ("layers.{i}.attention.v_proj.bias", "model.layers.{i}.self_attn.v_proj.bias"),
    ("layers.{i}.attention.o_proj.weight", "model.layers.{i}.self_attn.o_proj.weight"),
    ("layers.{i}.attention.o_proj.bias", "model.layers.{i}.self_attn.o_proj.bias"),
    ("layers.{i}.attention.sinks", "model.layers.{i}.self_attn.sinks"),
    ("layers.{i}.ffn_norm.weight", "model.layers.{i}.post_attention_layernorm.weight"),
    ("layers.{i}.moe.router.weight", "model.layers.{i}.mlp.router.weight"),
    ("layers.{i}.moe.router.bias", "model.layers.{i}.mlp.router.bias"),
    ("layers.{i}.moe.experts.gate_up_proj", "model.layers.{i}.mlp.experts.gate_up_proj"),
    ("layers.{i}.moe.experts.gate_up_proj_bias", "model.layers.{i}.mlp.experts.gate_up_proj_bias"),
    ("layers.{i}.moe.experts.down_proj", "model.layers.{i}.mlp.experts.down_proj"),
    ("layers.{i}.moe.experts.down_proj_bias", "model.layers.{i}.mlp.experts.down_proj_bias"),
    ("layers.{i}.moe.experts.gate_up_proj_blocks", "model.layers.{i}.mlp.experts.gate_up_proj_blocks"),
    ("layers.{i}.moe.experts.gate_up_proj_scales", "model.layers.{i}.mlp.experts.gate_up_proj_scales"),
    ("layers.{i}.moe.experts.down_proj_blocks", "model.layers.{i}.mlp.experts.down_proj_blocks"),
    ("layers.{i}.moe.experts.down_proj_scales", "model.layers.{i}.mlp.experts.down_proj_scales"),
    ("norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
)


def _compile(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(re.escape("{i}"), r"(?P<i>\d+)") + r"\Z")


_OURS_TO_HF = [(_compile(ours), hf) for ours, hf in KEY_MAP]
_HF_TO_OURS = [(_compile(hf), ours) for ours, hf in KEY_MAP]


def _translate(name: str, table, direction: str) -> str:
    for pattern, target in table:
        m = pattern.match(name)
        if m:
            return target.replace("{i}", m.group("i")) if "i" in m.groupdict() else target
    raise KeyError(f"no {direction} mapping for key {name!r} (see model.hf.KEY_MAP)")


def hf_key(our_key: str) -> str:
    return _translate(our_key, _OURS_TO_HF, "ours->HF")


def our_key(hf_name: str) -> str:
    return _translate(hf_name, _HF_TO_OURS, "HF->ours")


def to_hf_state_dict(model: Transformer, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """HF-named tensors (contiguous, float ones cast to `dtype` if given; packed MXFP4 stays uint8)."""
    out = {}
    for name, tensor in model.state_dict().items():
        t = tensor.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[hf_key(name)] = t.contiguous()
    return out


# ---- config ------------------------------------------------------------------------------------

def args_from_hf_config(cfg: dict) -> ModelArgs:
    """ModelArgs from a GptOss config.json dict (v5 `rope_parameters` or older `rope_scaling` +
    `rope_theta`). Settings this model does not implement are errors naming the field."""
    if cfg.get("model_type") != "gpt_oss":
        raise ValueError(f"config.json: model_type must be 'gpt_oss', got {cfg.get('model_type')!r}")
    if cfg.get("tie_word_embeddings", False):
        raise ValueError("config.json: tie_word_embeddings=true is not supported (gpt-oss unties them)")
    if not cfg.get("attention_bias", True):
        raise ValueError("config.json: attention_bias=false is not supported (gpt-oss has q/k/v/o biases)")

    def need(key: str):
        if key not in cfg:
            raise ValueError(f"config.json: missing required field {key!r}")
        return cfg[key]

    rope = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {"rope_type": "default"})
    theta = rope.get("rope_theta", cfg.get("rope_theta", 150_000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "yarn"):
        raise ValueError(f"config.json: rope_type {rope_type!r} not supported (default or yarn)")
    for key in ("attention_factor", "mscale", "mscale_all_dim"):
        if rope.get(key) is not None:
            raise ValueError(f"config.json: rope setting {key}={rope[key]!r} not supported")
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError(f"config.json: partial_rotary_factor={rope['partial_rotary_factor']!r} not supported")
    yarn = {}
    if rope_type == "yarn":
        yarn = dict(yarn_factor=float(rope["factor"]),
                    yarn_original_context=int(rope["original_max_position_embeddings"]),
                    yarn_beta_fast=float(rope.get("beta_fast") or 32.0),
                    yarn_beta_slow=float(rope.get("beta_slow") or 1.0),
                    # HF's yarn defaults `truncate` to true when the key is absent
                    yarn_truncate=bool(rope.get("truncate", True)))
    hidden, heads = need("hidden_size"), need("num_attention_heads")
    layer_types = tuple(cfg.get("layer_types") or ())
    for t in layer_types:
        if t not in LAYER_TYPES:
            raise ValueError(f"config.json: layer_types entry {t!r} not supported")
    return ModelArgs(
        vocab_size=need("vocab_size"), dim=hidden, n_layers=need("num_hidden_layers"), n_heads=heads,
        n_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=cfg.get("head_dim") or hidden // heads,
        n_experts=need("num_local_experts"), top_k=need("num_experts_per_tok"),
        ffn_dim=need("intermediate_size"), sliding_window=need("sliding_window"), layer_types=layer_types,
        rope_theta=float(theta), max_seq_len=cfg.get("max_position_embeddings", 131_072),
        norm_eps=cfg.get("rms_norm_eps", 1e-5), swiglu_alpha=cfg.get("swiglu_alpha", 1.702),
        swiglu_limit=cfg.get("swiglu_limit", 7.0), init_std=cfg.get("initializer_range", 0.02), **yarn)


def hf_config_from_args(args: ModelArgs, *, dtype: torch.dtype = torch.float32, mxfp4: bool = False) -> dict:
    rope = {"rope_type": "default", "rope_theta": args.rope_theta}
    if args.yarn_factor != 1.0:
        rope = {"rope_type": "yarn", "rope_theta": args.rope_theta, "factor": args.yarn_factor,
                "original_max_position_embeddings": args.yarn_original_context,
                "beta_fast": args.yarn_beta_fast, "beta_slow": args.yarn_beta_slow, "truncate": args.yarn_truncate}
    cfg = {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss",
        "vocab_size": args.vocab_size, "hidden_size": args.dim, "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads, "num_key_value_heads": args.n_kv_heads, "head_dim": args.head_dim,
        "num_local_experts": args.n_experts, "num_experts_per_tok": args.top_k,
        "intermediate_size": args.ffn_dim, "sliding_window": args.sliding_window,
        "layer_types": list(args.layer_types), "max_position_embeddings": args.max_seq_len,
        "rms_norm_eps": args.norm_eps, "rope_parameters": rope, "swiglu_alpha": args.swiglu_alpha,
        "swiglu_limit": args.swiglu_limit, "attention_bias": True, "tie_word_embeddings": False,
        "initializer_range": args.init_std, "dtype": str(dtype).removeprefix("torch."),
    }
    if mxfp4:
        cfg["quantization_config"] = {
            "quant_method": "mxfp4",
            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                       "model.embed_tokens", "lm_head"]}
    return cfg


# ---- load / save -------------------------------------------------------------------------------

def _checkpoint_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [path / name for name in sorted(set(weight_map.values()))]
    single = path / "model.safetensors"
    if single.exists():
        return [single]
    raise FileNotFoundError(f"{path}: no model.safetensors or model.safetensors.index.json "
                            "(only safetensors checkpoints are read)")


def load(path: str | Path, dtype: torch.dtype | None = None, *, dequantize: bool = False,
         device: str | torch.device = "cpu") -> Transformer:
    """The checkpoint at `path` as a Transformer in eval mode. `dtype` None keeps the checkpoint's float
    dtype; MXFP4 experts stay packed (dequantized per forward) unless `dequantize=True`."""
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found")
    args = args_from_hf_config(json.loads(config_path.read_text()))

    state: dict[str, torch.Tensor] = {}
    for file in _checkpoint_files(path):
        with safe_open(str(file), framework="pt", device=str(device)) as f:
            for name in f.keys():
                state[our_key(name)] = f.get_tensor(name)
    if dtype is None:
        dtype = state["tok_embeddings.weight"].dtype if "tok_embeddings.weight" in state else torch.float32
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}

    mxfp4 = any(k.endswith("_blocks") for k in state)
    with torch.device("meta"):
        model = Transformer(args, mxfp4_experts=mxfp4)
    expected = model.state_dict()
    missing = [hf_key(k) for k in expected if k not in state]
    if missing:
        raise KeyError(f"{path}: checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    unexpected = [k for k in state if k not in expected]  # mapped names the model does not hold
    if unexpected:
        raise KeyError(f"{path}: tensors the model does not hold: {[hf_key(k) for k in unexpected[:3]]}")
    for k, t in expected.items():
        if tuple(state[k].shape) != tuple(t.shape):
            raise ValueError(f"{path}: {hf_key(k)} has shape {tuple(state[k].shape)}, "
                             f"config implies {tuple(t.shape)}")
    model.load_state_dict(state, strict=True, assign=True)
    if mxfp4 and dequantize:
        dequantize_experts(model, args, dtype)
    return model.eval()


def save(model: Transformer, path: str | Path, *, dtype: torch.dtype | None = None,
         max_shard_bytes: int = 2 << 30) -> None:
    """Write `config.json` + `model.safetensors` (or numbered shards with an index) into directory `path`."""
    if dtype is None:
        dtype = model.tok_embeddings.weight.dtype
    mxfp4 = any(isinstance(layer.moe.experts, MXFP4Experts) for layer in model.layers)
    state = model.state_dict()
    groups = ({name: state[name] for name in names} for names in state_groups(list(state)))
    save_streaming(model.args, groups, path, dtype=dtype, mxfp4=mxfp4, max_shard_bytes=max_shard_bytes)


def state_groups(names: list[str]) -> list[list[str]]:
    """Our state-dict names in write order, one group per unit a writer holds at once: the embeddings,
    each layer, the final norm and the output head."""
    groups: dict[str, list[str]] = {}
    for name in names:
        key = ".".join(name.split(".")[:2]) if name.startswith("layers.") else name.split(".")[0]
        groups.setdefault(key, []).append(name)
    return list(groups.values())


def save_streaming(args: ModelArgs, groups, path: str | Path, *, dtype: torch.dtype, mxfp4: bool = False,
                   max_shard_bytes: int = 2 << 30) -> None:
    """Write an HF checkpoint from `groups`, an iterable of {our name: tensor} dicts, holding at most one
    shard (about `max_shard_bytes`, at least one group) in memory: a model of any size is exported group
    by group. One shard is `model.safetensors`; several are `model-0000i-of-0000N.safetensors` with
    `model.safetensors.index.json`, as transformers writes them."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pending: dict[str, torch.Tensor] = {}
    parts: list[tuple[Path, list[str]]] = []

    def flush() -> None:
        if pending:
            part = path / f".part-{len(parts):05d}.safetensors"
            save_file(pending, str(part), metadata={"format": "pt"})
            parts.append((part, list(pending)))
            pending.clear()

    for group in groups:
        tensors = {}
        for name, tensor in group.items():
            t = tensor.detach()
            tensors[hf_key(name)] = (t.to(dtype) if t.is_floating_point() else t).contiguous()
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        if pending and sum(t.numel() * t.element_size() for t in pending.values()) + size > max_shard_bytes:
            flush()
        pending.update(tensors)
    flush()
    if len(parts) == 1:
        parts[0][0].rename(path / "model.safetensors")
    else:
        weight_map, total = {}, 0
        for i, (part, keys) in enumerate(parts):
            final = path / f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
            part.rename(final)
            weight_map.update({k: final.name for k in keys})
        total = sum((path / f).stat().st_size for f in set(weight_map.values()))
        (path / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n")
    config = hf_config_from_args(args, dtype=dtype, mxfp4=mxfp4)
    (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
