"""Training data: tokenize manifests -> megatron-core `GPTDataset` blend -> this rank's micro-batches.

- `read_manifest` reads `tokenize/manifest.json` through the dataclass its writer uses
  (common/manifest.py) and refuses data whose filter record it cannot verify, unless unfiltered data
  is explicitly allowed.
- `GPTDataset` (via `BlendedMegatronDatasetBuilder`) packs documents into sequences of the phase's
  length with a shuffle fixed by the seed; a blend of several tokenized datasets takes weights.
- Global batch g of a phase is samples [g*G, (g+1)*G) of that phase's dataset; data-parallel rank r
  takes its contiguous G/dp slice and cuts it into micro-batches. The order therefore depends on the
  seed only, never on the number of ranks, and the data position is just (phase, step in phase).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common import filter_record
from common.manifest import FILE as MANIFEST, ManifestError, TokenizeManifest
from pretrain.config import DataConfig, PhaseConfig



class DataError(RuntimeError):
    """Training data that is missing, inconsistent or not allowed (names the file)."""


@dataclass(frozen=True)
class TokenizedSource:
    """One tokenized dataset as its manifest describes it."""
    directory: str  # the tokenize directory (absolute)
    prefix: str  # megatron-core path prefix (absolute, without .bin/.idx)
    weight: float
    vocab_size: int
    eod_id: int
    tokenizer_sha256: str | None
    dtype: str | None
    tokens: int | None
    documents: int | None
    filter: dict | None  # the CBRN filter record the data passed (verified); None = unfiltered
    filter_check: str = ""  # what was verified of the record, or why the data counts as unfiltered
    tokenizer_json: str | None = None  # path of tokenizer.json, when present

    def describe(self) -> dict:
        return {"path": self.directory, "prefix": self.prefix, "weight": self.weight, "tokens": self.tokens,
                "documents": self.documents, "tokenizer_sha256": self.tokenizer_sha256,
                "filtered": self.filter is not None}


def read_manifest(directory: str | Path, *, weight: float = 1.0, allow_unfiltered: bool = False) -> TokenizedSource:
    """The manifest of a tokenize output directory (`common.manifest.TokenizeManifest`: exactly the names
    the tokenize stage writes), checked. The filter record `filter` must be complete and, when the cbrn
    stage's directory sits beside this one (a run directory), match its stats.json and ledgers
    (`common.filter_record.check`); a missing, partial or mismatching record is refused by name unless
    unfiltered data is allowed (then it warns and the data counts as unfiltered)."""
    directory = Path(directory).resolve()
    path = directory / MANIFEST
    try:
        m = TokenizeManifest.read(directory)
    except ManifestError as e:
        raise DataError(str(e)) from None
    prefix = directory / m.merged.get("prefix", "")
    for ext in (".bin", ".idx"):
        if not Path(f"{prefix}{ext}").is_file():
            raise DataError(f"{path}: data file {prefix}{ext} not found")

    record, verified, problem = m.filter, "", ""
    if not record or m.unfiltered:
        problem = (f"{path}: the manifest does not record that this data passed the CBRN filter ('filter' is "
                   f"{record!r}{', unfiltered: true' if m.unfiltered else ''})")
    else:  # the record says which stage filtered the data upstream; check() holds it to that stage's files
        try:
            verified = filter_record.check(record, where=str(path), stage_dir=directory.parent / filter_record.STAGE)
        except filter_record.FilterRecordError as e:
            problem = f"{e} (CBRN filter record)"
    if problem:
        if not allow_unfiltered:
            raise DataError(f"{problem}. Refusing to train on it; pass --allow-unfiltered "
                            f"(train.data.allow_unfiltered=true) to train on it as unfiltered data.")
        warn_unfiltered(path, problem)
    tokenizer_json = directory / str(m.tokenizer.get("path", ""))
    return TokenizedSource(
        directory=str(directory), prefix=str(prefix), weight=float(weight), vocab_size=m.vocab_size, eod_id=m.eod_id,
        tokenizer_sha256=m.tokenizer.get("sha256"), dtype=m.dtype, tokens=m.tokens, documents=m.documents,
        filter=None if problem else record, filter_check=problem or verified,
        tokenizer_json=str(tokenizer_json) if m.tokenizer.get("path") and tokenizer_json.is_file() else None)


def warn_unfiltered(path: Path, why: str = "") -> None:
    bar = "!" * 100
    msg = (f"\n{bar}\n!!! WARNING: TRAINING ON DATA THAT DID NOT PASS THE CBRN FILTER\n!!! {path}\n"
           f"{'!!! ' + why + chr(10) if why else ''}"
           f"!!! allowed only because --allow-unfiltered / train.data.allow_unfiltered is set\n{bar}\n")
    print(msg, file=sys.stderr, flush=True)
    logging.getLogger("pretrain").warning("training on unfiltered data: %s", path)


def resolve_sources(cfg: DataConfig, run_dir: str | Path, *, valid: bool = False,
                    like: TokenizedSource | None = None) -> list[TokenizedSource]:
    """The configured blend (default: RUN_DIR/tokenize), every manifest checked, one tokenizer for all
    (and the same as `like`'s, when given); with `valid`, the validation sources instead (empty when
    none are configured)."""
    entries = [(s.path, s.weight) for s in cfg.valid_sources] if valid else \
        [(s.path, s.weight) for s in cfg.sources] or [("tokenize", 1.0)]
    sources = []
    for p, w in entries:
        directory = Path(p) if Path(p).is_absolute() else Path(run_dir) / p
        sources.append(read_manifest(directory, weight=w, allow_unfiltered=cfg.allow_unfiltered))
    first = like or (sources[0] if sources else None)
    for s in sources:
        for key in ("vocab_size", "eod_id", "tokenizer_sha256"):
            if getattr(s, key) != getattr(first, key):
                raise DataError(f"train.data.{'valid_sources' if valid else 'sources'}: {s.directory} has "
                                f"{key}={getattr(s, key)!r} but {first.directory} has {getattr(first, key)!r}; "
                                f"training and validation data need one tokenizer")
    return sources


class _TokenizerInfo:
    """What GPTDataset asks of a tokenizer (it never tokenizes): eod, vocab size, cache identity."""

    def __init__(self, source: TokenizedSource):
        self.eod = source.eod_id
        self.vocab_size = source.vocab_size
        self.unique_identifiers = {"class": "pretrain.data", "vocab_size": source.vocab_size,
                                   "eod": source.eod_id, "tokenizer_sha256": source.tokenizer_sha256}


def build_dataset(sources: list[TokenizedSource], *, seq_len: int, num_samples: int, seed: int,
                  cache_dir: str | Path, valid_fraction: float = 0.0, valid_sources: list[TokenizedSource] = (),
                  valid_samples: int = 0):
    """megatron-core's GPT dataset over the blend: `num_samples` packed sequences of seq_len + 1 tokens.
    With `valid_samples`, also a validation dataset: the last `valid_fraction` of every source's documents
    (megatron-core's split by document index; the training dataset never sees them), or `valid_sources`.
    Returns the training dataset, or (training, validation) when validation was asked for.
    Needs an initialised process group (rank 0 builds the index cache, the others read it)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    logging.getLogger("megatron").setLevel(logging.ERROR)  # it logs index building at WARNING
    _drop_unsafe_cache(Path(cache_dir))
    blend = ([s.prefix for s in sources], [s.weight for s in sources])
    validate = valid_samples > 0 and (valid_fraction > 0 or bool(valid_sources))
    if validate and valid_sources:
        split = dict(blend_per_split=[blend, ([s.prefix for s in valid_sources], [s.weight for s in valid_sources]),
                                      None])
    elif validate:
        split = dict(blend=blend, split=f"{1 - valid_fraction:.6f},{valid_fraction:.6f},0")
        for s in sources:
            if s.documents is not None and int(s.documents * valid_fraction) < 1:
                raise DataError(f"{s.directory}: train.data.valid_fraction={valid_fraction} holds out no document "
                                f"of {s.documents}; raise it, give train.data.valid_sources, or set it to 0")
    else:
        split = dict(blend=blend, split="1,0,0")
    config = GPTDatasetConfig(
        random_seed=seed, sequence_length=seq_len, **split, path_to_cache=str(cache_dir),
        tokenizer=_TokenizerInfo(sources[0]), reset_position_ids=False, reset_attention_mask=False,
        eod_mask_loss=False, create_attention_mask=False)
    sizes = [num_samples, valid_samples if validate else 0, 0]
    train, valid, _ = BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()
    if train is None or len(train) < num_samples:
        raise DataError(f"data blend {blend[0]}: got {0 if train is None else len(train)} "
                        f"samples of length {seq_len}, need {num_samples}")
    if not validate:
        return train
    if valid is None or len(valid) < valid_samples:
        raise DataError(f"validation data: got {0 if valid is None else len(valid)} samples of length {seq_len}, "
                        f"need {valid_samples}")
    return train, valid


def _drop_unsafe_cache(cache_dir: Path) -> None:
    """megatron-core opens its index cache with allow_pickle=True; keep only readable plain arrays there:
    a file that is not one (a pickle, or one cut short by a kill during its write) is deleted, and
    megatron rebuilds the cache from the shards."""
    for path in sorted(cache_dir.glob("*.npy")) if cache_dir.is_dir() else []:
        try:
            np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            print(f"pretrain: {path} is not a readable plain array ({type(e).__name__}: {e}); deleted "
                  f"(rebuilt from the shards)", file=sys.stderr)
            path.unlink()


@dataclass
class MicroBatch:
    tokens: torch.Tensor  # (B, T) int64
    labels: torch.Tensor  # (B, T) int64, tokens shifted by one
    loss_mask: torch.Tensor  # (B, T) float32, 0 on padding
    positions: torch.Tensor | None = None  # (T,) where the tokens sit in their sequences; None = 0..T-1


@dataclass
class EvalData:
    """The validation sequences of one phase (the same `count` every time), strided over the DP ranks."""
    dataset: object
    count: int
    micro_batch: int
    dp_rank: int
    dp: int

    def micro_batches(self, device: torch.device) -> list[MicroBatch]:
        indices = list(range(self.dp_rank, self.count, self.dp))
        return [_stack([self.dataset[j] for j in indices[i:i + self.micro_batch]], device)
                for i in range(0, len(indices), self.micro_batch)]


def _stack(samples: list[dict], device: torch.device) -> MicroBatch:
    return MicroBatch(
        tokens=torch.stack([s["tokens"] for s in samples]).to(device, non_blocking=True),
        labels=torch.stack([s["labels"] for s in samples]).to(device, non_blocking=True),
        loss_mask=torch.stack([s["loss_mask"] for s in samples]).float().to(device, non_blocking=True))


@dataclass
class PhaseData:
    """The samples of one phase, sliced for one data-parallel rank."""
    dataset: object
    phase: PhaseConfig
    dp_rank: int
    dp: int
    micro_batch: int = field(init=False)

    def __post_init__(self) -> None:
        _, self.micro_batch, _ = self.phase.split(self.dp)

    @property
    def fingerprint(self) -> str:
        """Changes when the data, the seed, the sequence length or the sample count change."""
        return str(getattr(self.dataset, "unique_description_hash", ""))

    def sample_indices(self, phase_step: int) -> list[int]:
        per_rank, _, _ = self.phase.split(self.dp)
        start = phase_step * self.phase.global_batch + self.dp_rank * per_rank
        return list(range(start, start + per_rank))

    def micro_batches(self, phase_step: int, device: torch.device) -> list[MicroBatch]:
        indices = self.sample_indices(phase_step)
        return [_stack([self.dataset[j] for j in indices[i:i + self.micro_batch]], device)
                for i in range(0, len(indices), self.micro_batch)]
