"""Megatron .bin/.idx shards written with numpy, so the encode workers never import torch.

The format is megatron-core's `IndexedDataset` (MMIDIDX, version 1): header, dtype code, sequence and
document counts, then int32 sequence lengths, int64 byte pointers and int64 document indices.
megatron-core's own `IndexedDatasetBuilder` writes a byte-identical file (tests/pipeline/
test_megatron_shard.py holds them equal) and its reader checks every shard again when the merge step
joins them with `add_index`. Unlike the builder, which takes one document at a time, this writer takes
a batch's tokens as one array: one write per batch.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

INDEX_HEADER = b"MMIDIDX\x00\x00"
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
               np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7, np.dtype(np.uint16): 8}


def indexed_dataset():
    """megatron-core's indexed_dataset module (its import warns about optional GPU packages: silenced); it
    imports torch, so only the merge step and the tests load it."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex are not installed.*")
        from megatron.core.datasets import indexed_dataset as module
    return module


class ShardWriter:
    """Append documents to `bin_path`; `finalize(idx_path)` writes the index."""

    def __init__(self, bin_path: Path, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPE_CODES:
            raise ValueError(f"megatron-core's index has no code for dtype {self.dtype}")
        self.file = open(bin_path, "wb")
        self.sequence_lengths: list[np.ndarray] = []
        self.doc_sequences: list[np.ndarray] = []     # sequences of each document

    def add_documents(self, tokens: np.ndarray, sequence_lengths: np.ndarray, doc_sequences: np.ndarray) -> None:
        """`tokens`: the documents' tokens back to back; `sequence_lengths`: every sequence's length, in
        order (they sum to len(tokens)); `doc_sequences`: how many of those sequences each document has."""
        if int(sequence_lengths.sum()) != len(tokens) or int(doc_sequences.sum()) != len(sequence_lengths):
            raise ValueError("sequence lengths must cover the tokens and documents the sequences")
        self.file.write(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes())
        self.sequence_lengths.append(np.asarray(sequence_lengths, np.int32))
        self.doc_sequences.append(np.asarray(doc_sequences, np.int64))

    def finalize(self, idx_path: Path) -> None:
        self.file.close()
        lengths = np.concatenate(self.sequence_lengths) if self.sequence_lengths else np.zeros(0, np.int32)
        per_doc = np.concatenate(self.doc_sequences) if self.doc_sequences else np.zeros(0, np.int64)
        pointers = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        documents = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
        with open(idx_path, "wb") as f:
            f.write(INDEX_HEADER + struct.pack("<Q", 1) + struct.pack("<B", DTYPE_CODES[self.dtype]))
            f.write(struct.pack("<Q", len(lengths)) + struct.pack("<Q", len(documents)))
            f.write(lengths.tobytes() + pointers.tobytes() + documents.tobytes())

    def close(self) -> None:
        self.file.close()
