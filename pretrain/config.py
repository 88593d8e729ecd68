"""The `[train]` section of a run config: one kw_only dataclass tree with embedded defaults.

With no config file at all the defaults train the `small` preset on the demo run's shards
(`runs/demo/tokenize/`) in two phases (plain RoPE at 256, then YaRN x4 at 1024) in a few minutes on
2 CPU cores. `configs/tiny.toml` shrinks it for tests. Resolution (defaults <- preset <- file <-
`train.x=...` overrides) is `common.config.load`; this module only declares and validates.

TOML shape:

    [train]
    seed = 1234
    [train.model]
    preset = "small"
    overrides = { n_layers = 2 }
    [[train.phases]]
    name = "base"
    steps = 60
    seq_len = 256
    ...
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.io import canonical_json, read_json

DTYPES = ("auto", "float32", "bfloat16")
AUX_SCOPES = ("sequence", "micro_batch")
EXPORT_HF = ("none", "final", "every")
RECOMPUTE = ("none", "full", "selective")


@dataclass(kw_only=True)
class ModelConfig:
    preset: str = "small"  # a model.args preset: tiny | small | gpt-oss-20b | gpt-oss-120b
    # ModelArgs fields to override; vocab_size always comes from the tokenizer manifest.
    overrides: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str = "train.model") -> None:
        from model.args import PRESETS, ModelArgs
        import dataclasses
        if self.preset not in PRESETS:
            raise ConfigError(f"{where}.preset: unknown model preset {self.preset!r}; known: {sorted(PRESETS)}")
        known = {f.name for f in dataclasses.fields(ModelArgs)}
        for key in self.overrides:
            if key not in known:
                raise ConfigError(f"{where}.overrides.{key}: not a ModelArgs field")
            if key == "vocab_size":
                raise ConfigError(f"{where}.overrides.vocab_size: set by the tokenizer manifest, not the config")


@dataclass(kw_only=True)
class PhaseConfig:
    name: str = "phase"
    steps: int = 100
    seq_len: int = 256
    global_batch: int = 8  # sequences per optimizer step, all data-parallel ranks together
    micro_batch: int = 0  # sequences per rank per forward; 0 = global_batch / dp (no accumulation)
    lr: float = 3e-3  # peak
    min_lr: float = 3e-4  # end of the cosine
    warmup_steps: int = 10  # linear from 0 to lr, then cosine to min_lr over the rest of the phase
    yarn_factor: float = 1.0  # 1.0 = plain RoPE
    yarn_original_context: int = 256  # YaRN's original context (ignored when yarn_factor is 1)

    def split(self, dp: int) -> tuple[int, int, int]:
        """(sequences per rank, micro-batch, accumulation steps) of one optimizer step on `dp` ranks."""
        per_rank = self.global_batch // dp
        micro = self.micro_batch or per_rank
        return per_rank, micro, per_rank // micro if micro else 0

    def validate(self, where: str | None = None) -> None:
        if where is None:  # built as a list element: TrainConfig.validate checks it with its index
            return
        for key in ("steps", "seq_len", "global_batch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1, got {getattr(self, key)}")
        if self.micro_batch < 0:
            raise ConfigError(f"{where}.micro_batch: must be >= 0 (0 = no accumulation), got {self.micro_batch}")
        if not self.lr > 0:
            raise ConfigError(f"{where}.lr: must be > 0, got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"{where}.min_lr: must be in [0, lr={self.lr}], got {self.min_lr}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ConfigError(f"{where}.warmup_steps: must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if self.yarn_factor < 1.0:
            raise ConfigError(f"{where}.yarn_factor: must be >= 1.0 (1.0 = plain RoPE), got {self.yarn_factor}")
        if self.yarn_original_context < 1:
            raise ConfigError(f"{where}.yarn_original_context: must be >= 1")


def _default_phases() -> list[PhaseConfig]:
    # The CPU demo: ~100k tokens, a few minutes on 2 cores (2 processes); then 4x the context with YaRN.
    return [
        PhaseConfig(name="base", steps=40, seq_len=256, global_batch=8, lr=2e-3, min_lr=2e-4, warmup_steps=6),
        PhaseConfig(name="long", steps=8, seq_len=1024, global_batch=2, lr=6e-4, min_lr=6e-5, warmup_steps=2,
                    yarn_factor=4.0, yarn_original_context=256),
    ]


@dataclass(kw_only=True)
class OptimConfig:
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1  # on matrices and embeddings; never on biases, norms or sinks
    grad_clip: float = 1.0  # global L2 norm across all ranks; 0 = off

    def validate(self, where: str = "train.optim") -> None:
        for key in ("beta1", "beta2"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be in [0, 1), got {getattr(self, key)}")
        if not self.eps > 0:
            raise ConfigError(f"{where}.eps: must be > 0")
        if self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay: must be >= 0")
        if self.grad_clip < 0:
            raise ConfigError(f"{where}.grad_clip: must be >= 0 (0 = off)")


@dataclass(kw_only=True)
class ParallelConfig:
    tp: int = 1  # tensor parallel: heads and expert FFN width split (megatron-core's TP mappings)
    ep: int = 1  # expert parallel: experts split across data-parallel ranks, all-to-all dispatch
    # context parallel: every sequence's positions split over cp ranks (keys/values gathered for full
    # attention, a window-sized halo for sliding layers); seq_len must divide by cp. 1 = off.
    cp: int = 1
    # Data parallel: true = FSDP2 (weights, gradients and AdamW state sharded over the data-parallel
    # ranks, experts over the ranks holding the same experts); false = every rank holds a full replica.
    fsdp: bool = False
    # Processes `pretrain.launch` and the pipeline stage start (torchrun --nproc-per-node); 0 = auto:
    # every GPU, or 2 on a CPU machine with 2+ cores (DP=2 at one thread each beats one 2-thread
    # process), whichever the batch sizes allow. A direct torchrun/srun launch decides its own world.
    nproc: int = 0
    backend: str = "auto"  # auto = nccl with CUDA, else gloo

    def validate(self, where: str = "train.parallel") -> None:
        for key in ("tp", "ep", "cp"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1, got {getattr(self, key)}")
        if self.nproc < 0:
            raise ConfigError(f"{where}.nproc: must be >= 0 (0 = auto), got {self.nproc}")
        if self.backend not in ("auto", "gloo", "nccl"):
            raise ConfigError(f"{where}.backend: expected auto, gloo or nccl, got {self.backend!r}")
        if self.nproc and self.nproc % (self.tp * self.cp):
            raise ConfigError(f"{where}.nproc ({self.nproc}) must be a multiple of tp x cp ({self.tp * self.cp})")
        if self.nproc and (self.nproc // (self.tp * self.cp)) % self.ep:
            raise ConfigError(f"{where}.ep ({self.ep}) must divide the data-parallel size nproc/(tp x cp) "
                              f"({self.nproc // (self.tp * self.cp)})")



@dataclass(kw_only=True)
class DataSource:
    path: str  # a tokenize output directory (holding manifest.json); relative = inside the run dir
    weight: float = 1.0


@dataclass(kw_only=True)
class DataConfig:
    # Blend of tokenized datasets; empty = the run's own `tokenize/` directory.
    sources: list[DataSource] = field(default_factory=list)
    # Held out for the validation loss: the last `valid_fraction` of every source's documents (by
    # document index, megatron-core's split), never trained on. 0 = none (then `valid_sources`, if any).
    valid_fraction: float = 0.02
    # A separate tokenized validation set instead of the held-out split (same tokenizer).
    valid_sources: list[DataSource] = field(default_factory=list)
    # Train on shards whose manifest does not record the CBRN filter (warns loudly). Also --allow-unfiltered.
    allow_unfiltered: bool = False

    def validate(self, where: str = "train.data") -> None:
        for name in ("sources", "valid_sources"):
            for i, s in enumerate(getattr(self, name)):
                if not s.path:
                    raise ConfigError(f"{where}.{name}[{i}].path: must not be empty")
                if not s.weight > 0:
                    raise ConfigError(f"{where}.{name}[{i}].weight: must be > 0, got {s.weight}")
        if not 0.0 <= self.valid_fraction <= 0.5:
            raise ConfigError(f"{where}.valid_fraction: must be in [0, 0.5], got {self.valid_fraction}")
        if self.valid_sources and self.valid_fraction:
            raise ConfigError(f"{where}: valid_sources and valid_fraction exclude each other (set "
                              f"valid_fraction = 0 to validate on valid_sources)")


@dataclass(kw_only=True)
class EvalConfig:
    every: int = 20  # validation loss every N steps, and at the end of every phase; 0 = phase ends only
    sequences: int = 16  # held-out sequences per evaluation (the same ones each time), all ranks together

    def validate(self, where: str = "train.eval") -> None:
        if self.every < 0:
            raise ConfigError(f"{where}.every: must be >= 0, got {self.every}")
        if self.sequences < 1:
            raise ConfigError(f"{where}.sequences: must be >= 1, got {self.sequences}")


@dataclass(kw_only=True)
class CheckpointConfig:
    every: int = 20  # steps between checkpoints (0 = only at phase ends, the end and on signals)
    keep_last: int = 3  # older step-<N> directories are deleted; phase-end ones count too
    export_hf: str = "final"  # none | final (RUN_DIR/train/hf/) | every (also step-<N>/hf/)

    def validate(self, where: str = "train.checkpoint") -> None:
        if self.every < 0:
            raise ConfigError(f"{where}.every: must be >= 0, got {self.every}")
        if self.keep_last < 1:
            raise ConfigError(f"{where}.keep_last: must be >= 1, got {self.keep_last}")
        if self.export_hf not in EXPORT_HF:
            raise ConfigError(f"{where}.export_hf: expected one of {EXPORT_HF}, got {self.export_hf!r}")


@dataclass(kw_only=True)
class LogConfig:
    every: int = 5  # a progress line every N steps (off a TTY); metrics.jsonl gets every step
    tensorboard: bool = True
    plots: bool = True  # PNGs at the end of the run (also `python -m pretrain.plots RUN_DIR`)

    def validate(self, where: str = "train.log") -> None:
        if self.every < 1:
            raise ConfigError(f"{where}.every: must be >= 1")


@dataclass(kw_only=True)
class TrainConfig:
    seed: int = 1234  # weight init and data order
    dtype: str = "auto"  # auto = float32 on CPU, bfloat16 autocast on GPU (float32 master weights)
    aux_loss_coef: float = 0.01  # MoE load-balancing loss weight
    # "sequence": load-balancing loss per sequence, averaged (the same for any DP / micro-batch split);
    # "micro_batch": the model's own loss over each micro-batch (as HF computes it).
    aux_loss_scope: str = "sequence"
    # Activation recompute per transformer block: none | full | selective (pretrain/recompute.py).
    activation_checkpoint: str = "none"
    # Cross-entropy over this many tokens at a time, each chunk's logits recomputed in the backward, so the
    # (tokens x vocab) logits never exist at once; 0 = all at once. Long phases with a large vocabulary
    # need it (131k tokens x 201k vocab = ~50 GB of bf16 logits); costs one more unembedding matmul.
    loss_chunk_tokens: int = 0
    # Bit-exact reruns and resume (pretrain/determinism.py). Unset = auto: on for CPU (free), off on CUDA
    # (deterministic kernels cost 39 % there, GPU.md); true/false force it.
    deterministic: bool | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    phases: list[PhaseConfig] = field(default_factory=_default_phases)
    optim: OptimConfig = field(default_factory=OptimConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"train.dtype: expected one of {DTYPES}, got {self.dtype!r}")
        if self.aux_loss_coef < 0:
            raise ConfigError(f"train.aux_loss_coef: must be >= 0, got {self.aux_loss_coef}")
        if self.aux_loss_scope not in AUX_SCOPES:
            raise ConfigError(f"train.aux_loss_scope: expected one of {AUX_SCOPES}, got {self.aux_loss_scope!r}")
        if self.activation_checkpoint not in RECOMPUTE:
            raise ConfigError(f"train.activation_checkpoint: expected one of {RECOMPUTE}, got "
                              f"{self.activation_checkpoint!r}")
        if self.loss_chunk_tokens < 0:
            raise ConfigError(f"train.loss_chunk_tokens: must be >= 0 (0 = off), got {self.loss_chunk_tokens}")
        if not self.phases:
            raise ConfigError("train.phases: at least one phase is needed")
        names = set()
        for i, phase in enumerate(self.phases):
            phase.validate(f"train.phases[{i}]")
            if phase.name in names:
                raise ConfigError(f"train.phases[{i}].name: {phase.name!r} is used twice")
            names.add(phase.name)
        self.model.validate()
        self.optim.validate()
        self.parallel.validate()
        self.data.validate()
        self.eval.validate()
        self.checkpoint.validate()
        self.log.validate()

    def processes(self) -> int:
        """How many processes to launch: `parallel.nproc`, or for 0 the largest that fits of every GPU
        (CUDA) or 2 (CPU, 2+ cores), falling back to tp * ep."""
        import os

        import torch
        if self.parallel.nproc:
            return self.parallel.nproc
        minimum = self.parallel.tp * self.parallel.ep * self.parallel.cp
        wanted = torch.cuda.device_count() if torch.cuda.is_available() else min(2, os.cpu_count() or 1)
        for n in range(max(wanted, minimum), minimum - 1, -1):
            try:
                self.check_world(n)
                return n
            except ConfigError:
                continue
        return minimum

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)

    def check_world(self, world: int) -> None:
        """The launched world must fit the parallel sizes (torchrun/srun decide the world size)."""
        tp, ep, cp = self.parallel.tp, self.parallel.ep, self.parallel.cp
        if world % (tp * cp):
            raise ConfigError(f"train.parallel.tp x cp ({tp} x {cp}) must divide the number of processes ({world})")
        dp = world // (tp * cp)
        if dp % ep:
            raise ConfigError(f"train.parallel.ep ({ep}) must divide the data-parallel size {dp} "
                              f"(= {world} processes / (tp {tp} x cp {cp}))")
        for i, p in enumerate(self.phases):
            per_rank, mb, _ = p.split(dp)
            if p.seq_len % cp:
                raise ConfigError(f"train.phases[{i}].seq_len: {p.seq_len} does not split into "
                                  f"train.parallel.cp = {cp} equal slices")
            if p.global_batch % dp or mb < 1 or per_rank % mb:
                raise ConfigError(f"train.phases[{i}]: global_batch {p.global_batch} must split into dp={dp} "
                                  f"ranks x micro_batch {p.micro_batch or '(auto)'} x whole accumulation steps")


# Keys that may change between a run and its resumption without changing what it computes (the layout
# changes only the order of float sums: checkpoints reshard, pretrain/checkpoint.py).
RESUMABLE_KEYS = ("checkpoint", "log", "eval", "parallel", "activation_checkpoint", "deterministic",
                  "loss_chunk_tokens", "data.allow_unfiltered")


def deciding_config(train: dict) -> dict:
    """The train config without the keys a resumed run may change (they do not change what is computed)."""
    out = {k: v for k, v in train.items()}
    for key in RESUMABLE_KEYS:
        node, parts = out, key.split(".")
        for part in parts[:-1]:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node.pop(parts[-1], None)
    return out


def config_digest(train: dict) -> str:
    return hashlib.sha256(canonical_json(deciding_config(train)).encode()).hexdigest()


def check_resume_config(train_dir: Path, train: dict) -> None:
    recorded = train_dir / "config.json"
    if not recorded.is_file():
        return
    before = deciding_config(read_json(recorded).get("train", {}))
    now = deciding_config(train)
    if before != now:
        diff = sorted(_diff(before, now))
        raise ConfigError(f"{recorded}: this run directory was trained with a different config "
                          f"({', '.join(diff[:6])}); use a new --run-dir or the recorded config")


def _diff(a, b, prefix="train"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _diff(a.get(k), b.get(k), f"{prefix}.{k}")
    elif a != b:
        yield prefix


