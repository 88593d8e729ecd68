"""`tokenize/manifest.json`: one dataclass for its writer (pipeline/tokenize_steps.py) and its reader
(pretrain/data.py), so the two cannot drift. The reader takes exactly these names (no aliases) and names
the file and the field that is missing or of the wrong type. Paths inside are relative to tokenize/.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from common.io import atomic_write_json, read_json

FILE = "manifest.json"
FORMAT = "megatron-core IndexedDataset (.bin/.idx) + zarr v3"


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or lacks a field (names the file and the field)."""


@dataclass(kw_only=True)
class TokenizeManifest:
    format: str
    input_stage: str
    filter: dict | None  # the CBRN filter record (common/filter_record.py), None = unfiltered
    unfiltered: bool
    tokenizer: dict  # path (relative to tokenize/), sha256, vocab_size, eod_token, eod_id, special_tokens, source
    dtype: str
    eod_id: int
    vocab_size: int
    max_sequence_tokens: int
    documents: int
    sequences: int
    tokens: int
    split_documents: int
    merged: dict  # prefix (relative to tokenize/), bin_sha256, idx_sha256
    zarr: str
    shards: list

    def write(self, directory: str | Path) -> Path:
        return atomic_write_json(Path(directory) / FILE, dataclasses.asdict(self))

    @classmethod
    def read(cls, directory: str | Path) -> "TokenizeManifest":
        path = Path(directory) / FILE
        if not path.is_file():
            raise ManifestError(f"{path}: not found (expected the tokenize stage's manifest; run the pipeline's "
                                f"tokenize stage first or point train.data.sources at a tokenize directory)")
        try:
            data = read_json(path)
        except Exception as e:  # noqa: BLE001 - any parse failure is reported with the file
            raise ManifestError(f"{path}: cannot parse: {e}") from None
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: top level must be an object")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                raise ManifestError(f"{path}: '{f.name}' missing (written by an older or another tool? re-run "
                                    f"the tokenize stage)")
            value, kind = data[f.name], {"str": str, "int": int, "bool": bool, "dict": dict, "list": list}.get(
                str(f.type).split(" |")[0])
            if kind is not None and not (value is None and "None" in str(f.type)) and (
                    not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise ManifestError(f"{path}: '{f.name}' must be {str(f.type)}, got {value!r:.80}")
            values[f.name] = value
        for key in ("vocab_size", "eod_id"):
            if values[key] < 0:
                raise ManifestError(f"{path}: '{key}' must be >= 0, got {values[key]}")
        return cls(**values)
