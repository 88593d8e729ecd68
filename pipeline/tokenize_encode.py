"""The encode block: one input shard -> one Megatron shard (.bin/.idx, megatron-core's format written with
numpy by pipeline/megatron_shard.py, so no worker imports torch) + provenance.

Throughput: `encode_batch` releases the GIL and runs on all cores (rayon), so one background
thread encodes batches k+1 and k+2 (queued, so the encoder never waits for this thread) while
this thread reads batch k+3 and writes batch k. A batch's tokens go to the shard as one array
(one write per batch), never per-token or per-document Python. The block reads
its shard itself (a source block, like ingest's reader) as (id, text, file, line) tuples: the
per-document cost of Document objects and a chain of generator blocks was ~10% of the encode time.
"""
from __future__ import annotations

import io
import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from common import reasons
from common.progress import tick
from common.io import atomic_path, atomic_write_bytes, iter_lines, sha256_file
from pipeline.block import Block
from pipeline.megatron_shard import ShardWriter
from pipeline.tokenizer import open_tokenizer, token_byte_lengths, token_dtype

PROVENANCE_SCHEMA = pa.schema([
    ("sequence", pa.int64()),      # index of the sequence in the shard (.idx order)
    ("document", pa.int64()),      # index of its Megatron document in the shard
    ("part", pa.int32()),          # 0.. within a split document
    ("parts", pa.int32()),         # sequences of that document
    ("id", pa.string()),           # document id (the ledger's `id`)
    ("src_file", pa.string()),     # input file (ingest/inputs.json `rel`) and 1-based line or row
    ("src_line", pa.int64()),
    ("token_start", pa.int64()),   # [token_start, token_end) in the shard's .bin, in tokens
    ("token_end", pa.int64()),
])


IN_FLIGHT = 2            # batches queued for encoding while one is written
_LOADED: dict = {}


def _load(path: Path):
    """(tokenizer, byte length per id, dtype, sha256 of the file), loaded once per process and tokenizer content."""
    key = (str(path), sha256_file(path))
    if key not in _LOADED:
        tok = open_tokenizer(path)
        _LOADED.clear()
        _LOADED[key] = (tok, token_byte_lengths(tok), token_dtype(tok.get_vocab_size(with_added_tokens=True)), key[1])
    return _LOADED[key]


def batches(items, batch_bytes: int, text=lambda t: t):
    """Consecutive groups of `items` whose texts reach `batch_bytes` characters (the last may be smaller)."""
    batch, size = [], 0
    for item in items:
        batch.append(item)
        size += len(text(item))
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _encode(tok, texts: list[str]) -> list:
    """Token id lists; when the batch call fails, each document alone, failures as the exception."""
    try:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    except Exception:
        out = []
        for t in texts:
            try:
                out.append(tok.encode(t, add_special_tokens=False).ids)
            except Exception as e:
                out.append(e)
        return out


def read_docs(path: Path):
    """(id, text, source file, source line) of every document of a stage's shard; damage is an error."""
    for lineno, line in iter_lines(path):
        try:
            d = orjson.loads(line)
            src = (d.get("meta") or {}).get("_src") or {}
            yield d["id"], d["text"], src.get("file", d.get("source", "")), src.get("line")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise RuntimeError(f"{path}:{lineno}: cannot read document: {e!r}") from e


class TokenWriter(Block):
    """Reads a shard, encodes every document, writes the .bin/.idx, ledger rows and provenance."""

    name = "token_writer"

    def __init__(self, input_path: Path, tokenizer_path: Path, prefix: Path, provenance_path: Path,
                 eod_token: str, max_sequence_tokens: int, batch_bytes: int):
        self.input_path = Path(input_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.prefix = Path(prefix)
        self.provenance_path = Path(provenance_path)
        self.eod_token = eod_token
        self.max_seq = max_sequence_tokens
        self.batch_bytes = batch_bytes
        self.docs = self.sequences = self.tokens = self.split_docs = 0
        self.prov: list[dict] = []     # one dict of columns per batch

    def run(self, docs, task):
        tok, self.byte_len, self.dtype, self.tokenizer_sha256 = _load(self.tokenizer_path)
        self.eod = tok.token_to_id(self.eod_token)
        bin_path, idx_path = Path(f"{self.prefix}.bin"), Path(f"{self.prefix}.idx")
        with atomic_path(bin_path) as tmp_bin, atomic_path(idx_path) as tmp_idx:
            self.writer = ShardWriter(tmp_bin, self.dtype)
            try:
                with ThreadPoolExecutor(1) as pool:
                    pending: deque = deque()
                    for batch in batches(read_docs(self.input_path), self.batch_bytes, text=lambda d: d[1]):
                        pending.append((batch, pool.submit(_encode, tok, [d[1] for d in batch])))
                        if len(pending) > IN_FLIGHT:
                            self._write(*pending.popleft(), task)
                    while pending:
                        self._write(*pending.popleft(), task)
                self.writer.finalize(tmp_idx)
            finally:
                self.writer.close()
        task.add_output(bin_path)
        task.add_output(idx_path)
        task.add_output(self._write_provenance())
        return
        yield

    def _write(self, batch, future, task) -> None:
        encoded = future.result()
        tick(len(batch))
        failed = {i: e for i, e in enumerate(encoded) if isinstance(e, Exception)}
        if failed:
            encoded = [[] if i in failed else ids for i, ids in enumerate(encoded)]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths)
        flat = np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int64, count=int(ends[-1]))
        # lossless check: the tokens' bytes must add up to the text's UTF-8 bytes
        cum = np.concatenate([[0], np.cumsum(self.byte_len[flat])])
        decoded = cum[ends] - cum[ends - lengths]
        with_eod = np.insert(flat, ends, self.eod).astype(self.dtype)
        utf8 = np.fromiter((len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for _, t, _, _ in batch),
                           dtype=np.int64, count=len(batch))
        bad = (decoded != utf8) | (lengths == 0)
        bad[list(failed)] = True
        keep = ~bad
        n_tok = lengths + 1                                   # with the end-of-document token
        parts = -(-n_tok // self.max_seq)                     # sequences of each document
        k_n, k_parts = n_tok[keep], parts[keep]
        doc_of_seq = np.repeat(np.arange(len(k_n)), k_parts)
        part = np.arange(int(k_parts.sum())) - np.concatenate([[0], np.cumsum(k_parts)[:-1]])[doc_of_seq]
        self.writer.add_documents(with_eod if keep.all() else with_eod[np.repeat(keep, n_tok)],
                                  np.minimum(self.max_seq, k_n[doc_of_seq] - part * self.max_seq), k_parts)
        ledger = task.ledger
        for i, is_bad in enumerate(bad.tolist()):
            doc_id, _, src_file, src_line = batch[i]
            if is_bad:
                error = (f"encode failed: {failed[i]}" if i in failed else
                         f"encoding is lossy: {utf8[i]} UTF-8 bytes of text, tokens decode to {decoded[i]} bytes")
                task.quarantine(doc_id, reasons.TOKENIZE_ERROR, {"error": error, "file": src_file, "line": src_line})
            elif parts[i] == 1:
                ledger.kept(doc_id)                               # = task.keep, without a Document object
            else:
                ledger.kept(doc_id, {"sequences": int(parts[i]), "tokens": int(n_tok[i])})
        self._record(batch, np.nonzero(keep)[0], k_n, k_parts.astype(np.int64), doc_of_seq, part)

    def _record(self, batch, kept, n_tok, seq_counts, doc_of_row, part) -> None:
        """Provenance rows of this batch's kept documents, one per sequence, built with numpy (the sequence
        layout `_write` gave the shard: each row's document and its part in it)."""
        if not len(kept):
            return
        doc_start = self.tokens + np.concatenate([[0], np.cumsum(n_tok)[:-1]])
        rows = len(doc_of_row)
        start = doc_start[doc_of_row] + part * self.max_seq
        end = np.minimum(start + self.max_seq, (doc_start + n_tok)[doc_of_row])
        docs = [batch[i] for i in kept.tolist()]
        repeat = (lambda xs: xs) if rows == len(kept) else \
            (lambda xs: [x for x, c in zip(xs, seq_counts.tolist()) for _ in range(c)])
        self.prov.append({
            "sequence": self.sequences + np.arange(rows), "document": self.docs + doc_of_row,
            "part": part.astype(np.int32), "parts": seq_counts[doc_of_row].astype(np.int32),
            "id": repeat([d[0] for d in docs]),
            "src_file": repeat([d[2] for d in docs]),
            "src_line": repeat([d[3] for d in docs]),
            "token_start": start, "token_end": end})
        self.docs += len(kept)
        self.sequences += rows
        self.tokens = int(doc_start[-1] + n_tok[-1])
        self.split_docs += int((seq_counts > 1).sum())

    def _write_provenance(self) -> Path:
        buf = io.BytesIO()
        table = pa.concat_tables([pa.table(cols, schema=PROVENANCE_SCHEMA) for cols in self.prov]) \
            if self.prov else PROVENANCE_SCHEMA.empty_table()
        # ids are unique: dictionary-encode the file names only (8x faster to write, 3x smaller)
        pq.write_table(table.combine_chunks(), buf, compression="zstd", write_statistics=False,
                       use_dictionary=["src_file"])
        return atomic_write_bytes(self.provenance_path, buf.getvalue())

    def close(self, task) -> dict:
        return {"documents": self.docs, "tokens": self.tokens, "sequences": self.sequences, "split_documents": self.split_docs}
