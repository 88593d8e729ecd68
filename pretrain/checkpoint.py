"""Checkpoints: `RUN_DIR/train/checkpoints/step-<N>/`, safetensors + JSON only (no pickle anywhere).

    step-<N>/
      meta.json                 step, phase, data position, rope, mesh, model args, config digest; written last
      model-r<rank>.safetensors  the parameter slices this rank owns (each distinct slice once in the world)
      optim-r<rank>.safetensors  AdamW exp_avg / exp_avg_sq for the same slices
      rng-r<rank>.json           python / numpy / torch (CPU, CUDA) generator states of every rank
      hf/                        with checkpoint.export_hf = "every": config.json + model.safetensors (or shards)

Every tensor's safetensors metadata records its global shape and the offsets of the stored slice, so
`load` can reassemble any tp/ep/dp layout (the same layout resumes bit for bit) and `export_hf` can
write a Hugging Face checkpoint from the files alone, without a process group.
Writes are atomic: every rank writes into `.step-<N>.tmp/`, rank 0 writes meta.json last and renames
the directory; a killed save leaves only a `.tmp` directory, which the next start deletes.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file

from common.io import atomic_write_json, read_json
from pretrain.parallelize import local_tensor

FORMAT = "pretrain-checkpoint/1"
STEP_DIR = re.compile(r"^step-(\d+)$")
SHARDS_KEY = "pretrain.shards"


def checkpoint_root(train_dir: str | Path) -> Path:
    return Path(train_dir) / "checkpoints"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (a step-<N> directory with meta.json), oldest first."""
    root = Path(root)
    out = []
    if root.is_dir():
        for d in root.iterdir():
            m = STEP_DIR.match(d.name)
            if m and (d / "meta.json").is_file():
                out.append((int(m.group(1)), d))
    return sorted(out)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def remove_stale(root: str | Path) -> None:
    """Delete half-written `.step-*.tmp` directories (a save that was killed)."""
    root = Path(root)
    if root.is_dir():
        for d in root.glob(".step-*.tmp"):
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- RNG states as JSON

def rng_state() -> dict:
    version, mt, gauss = random.getstate()
    kind, key, pos, has_gauss, cached = np.random.get_state()
    state = {"python": {"version": version, "state": list(mt), "gauss_next": gauss},
             "numpy": {"kind": kind, "key": key.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)},
             "torch_cpu": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
             "cuda": []}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["key"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    decode = lambda s: torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(decode(state["torch_cpu"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([decode(s) for s in state["cuda"]])


# ---------------------------------------------------------------- save

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], shards: dict[str, dict]) -> None:
    # one metadata key: safetensors writes a metadata map in hash order, so two keys give unstable bytes
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path),
              metadata={SHARDS_KEY: json.dumps(shards, sort_keys=True)})
    _fsync(path)


def save(root: str | Path, step: int, *, plan, optimizer: torch.optim.Optimizer, meta: dict,
         keep_last: int, export_hf: bool = False) -> Path:
    """Collective: every rank writes its files, rank 0 publishes `step-<step>` atomically and prunes."""
    root, mesh = Path(root), plan.mesh
    final, tmp = root / f"step-{step}", root / f".step-{step}.tmp"
    if mesh.rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()

    model_t, optim_t, shards = {}, {}, {}
    for name, p in plan.params.items():
        spec = plan.specs[name]
        if not spec.owner(mesh):
            continue
        shards[name] = {"global_shape": list(spec.global_shape), "offsets": list(spec.offsets)}
        model_t[name] = local_tensor(p)
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                optim_t[f"{key}/{name}"] = local_tensor(state[key])
    if model_t:
        _write_tensors(tmp / f"model-r{mesh.rank:05d}.safetensors", model_t, shards)
    if optim_t:
        _write_tensors(tmp / f"optim-r{mesh.rank:05d}.safetensors", optim_t,
                       {k: shards[k.split("/", 1)[1]] for k in optim_t})
    atomic_write_json(tmp / f"rng-r{mesh.rank:05d}.json", rng_state())
    dist.barrier()

    if mesh.rank == 0:
        meta = {**meta, "format": FORMAT, "step": step,
                "files": sorted(p.name for p in tmp.iterdir() if not p.name.startswith("."))}
        if export_hf:
            export_hf_from(tmp, tmp / "hf", meta=meta)
        atomic_write_json(tmp / "meta.json", meta)  # last: its presence marks a complete checkpoint
        _fsync(tmp)
        if final.exists():  # re-saving a step (e.g. a resumed run stopped again at once)
            trash = root / f".step-{step}.old"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        _fsync(root)
        for _, old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


# ---------------------------------------------------------------- load (any layout)

class ShardIndex:
    """Where every stored slice of every tensor lives in a checkpoint's `<kind>-r*.safetensors` files."""

    def __init__(self, directory: str | Path, kind: str):
        self.directory = Path(directory)
        # key -> [(file, offsets, shape of the stored slice)]; key -> global shape
        self.pieces: dict[str, list[tuple[Path, tuple[int, ...], tuple[int, ...]]]] = {}
        self.global_shapes: dict[str, tuple[int, ...]] = {}
        self.stack = contextlib.ExitStack()
        self.handles: dict[Path, object] = {}
        for path in sorted(self.directory.glob(f"{kind}-r*.safetensors")):
            handle = self.stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
            self.handles[path] = handle
            shards = json.loads((handle.metadata() or {}).get(SHARDS_KEY, "{}"))
            for key in handle.keys():
                info = shards.get(key)
                if info is None:
                    raise ValueError(f"{path}: tensor {key!r} has no shard record in its metadata")
                shape = tuple(handle.get_slice(key).get_shape())
                self.pieces.setdefault(key, []).append((path, tuple(info["offsets"]), shape))
                self.global_shapes[key] = tuple(info["global_shape"])

    def close(self) -> None:
        self.stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __contains__(self, key: str) -> bool:
        return key in self.pieces

    def read(self, key: str, offsets: tuple[int, ...], shape: tuple[int, ...],
             global_shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """The region [offsets, offsets + shape) of tensor `key`, assembled from whichever slices cover it."""
        if key not in self.pieces:
            raise KeyError(f"{self.directory}: checkpoint has no tensor {key!r}")
        if global_shape is not None and tuple(global_shape) != self.global_shapes[key]:
            raise ValueError(f"{self.directory}: {key!r} has global shape {self.global_shapes[key]} in the "
                             f"checkpoint, the model expects {tuple(global_shape)}")
        if 0 in shape:  # an FSDP rank whose shard of a short tensor is empty
            return torch.empty(shape)
        out, covered = None, 0
        for path, p_off, p_shape in self.pieces[key]:
            lo = [max(a, b) for a, b in zip(offsets, p_off)]
            hi = [min(a + n, b + m) for a, n, b, m in zip(offsets, shape, p_off, p_shape)]
            if any(h <= l for l, h in zip(lo, hi)):
                continue
            src = tuple(slice(l - b, h - b) for l, h, b in zip(lo, hi, p_off))
            piece = self.handles[path].get_slice(key)[src] if src else self.handles[path].get_tensor(key)
            if out is None:
                out = torch.empty(shape, dtype=piece.dtype)
            out[tuple(slice(l - a, h - a) for l, h, a in zip(lo, hi, offsets))] = piece
            covered += piece.numel()
        total = int(np.prod(shape)) if shape else 1
        if out is None or covered != total:
            raise ValueError(f"{self.directory}: stored slices of {key!r} cover {covered} of the {total} "
                             f"elements at offsets {offsets} shape {shape}")
        return out


def load(directory: str | Path, *, plan, optimizer: torch.optim.Optimizer, restore_rng: bool) -> dict:
    """Load this rank's slices of the model and AdamW state from `directory`; returns meta.json."""
    directory = Path(directory)
    meta = read_json(directory / "meta.json")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{directory}/meta.json: format {meta.get('format')!r}, expected {FORMAT!r}")
    with ShardIndex(directory, "model") as model_idx, ShardIndex(directory, "optim") as optim_idx, torch.no_grad():
        for name, p in plan.params.items():
            spec, mine = plan.specs[name], local_tensor(p)
            mine.copy_(model_idx.read(name, spec.offsets, spec.local_shape, spec.global_shape).to(mine.dtype))
            state = {"step": torch.tensor(float(meta["optimizer_step"]))}
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = torch.zeros_like(p)  # a DTensor like the parameter under FSDP
                local_tensor(state[key]).copy_(optim_idx.read(f"{key}/{name}", spec.offsets, spec.local_shape,
                                                              spec.global_shape))
            optimizer.state[p] = state
    if restore_rng:
        set_rng_state(read_json(directory / f"rng-r{plan.mesh.rank:05d}.json"))
    return meta


# ---------------------------------------------------------------- Hugging Face export

def export_hf_from(directory: str | Path, out_dir: str | Path, *, meta: dict | None = None,
                   dtype: torch.dtype | None = None, max_shard_bytes: int = 2 << 30) -> Path:
    """Write `out_dir` (config.json + model.safetensors or numbered shards, `model.hf` / `transformers`
    format) from a checkpoint's files alone, one layer at a time: memory holds one output shard, never
    the whole model. Atomic: written beside `out_dir` and renamed."""
    from model import Transformer, hf
    from model.args import ModelArgs

    directory, out_dir = Path(directory), Path(out_dir)
    meta = meta or read_json(directory / "meta.json")
    fields = {f.name for f in dataclasses.fields(ModelArgs)}
    args = ModelArgs(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["model_args"].items() if k in fields})
    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in Transformer(args).state_dict().items()}
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with ShardIndex(directory, "model") as idx:
        missing = [n for n in shapes if n not in idx]
        if missing:
            raise ValueError(f"{directory}: checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
        groups = ({n: idx.read(n, (0,) * len(shapes[n]), shapes[n], shapes[n]) for n in names}
                  for names in hf.state_groups(list(shapes)))
        hf.save_streaming(args, groups, tmp, dtype=dtype or torch.float32, max_shard_bytes=max_shard_bytes)
    tokenizer = meta.get("tokenizer_json")
    if tokenizer and Path(tokenizer).is_file():
        shutil.copyfile(tokenizer, tmp / "tokenizer.json")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir
