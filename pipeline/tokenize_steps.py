"""The three steps of the tokenize stage and its manifest (see pipeline/tokenize.py for the picture)."""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import xxhash

from common.io import atomic_path, atomic_write_bytes, sha256_bytes, sha256_file
from common.manifest import FORMAT as MANIFEST_FORMAT, TokenizeManifest
from common.progress import tick
from pipeline.block import stats_of
from pipeline.context import RunContext, TaskContext
from pipeline.stage import ShardBlockStep, Step, TaskResult, recorded_outputs, shard_docs, shard_path
from pipeline.megatron_shard import indexed_dataset
from pipeline.tokenize_encode import TokenWriter, read_docs
from pipeline import tokenizer as tk

MERGED_PREFIX = "merged/data"
ZARR_DIR = "tokens.zarr"
ZARR_LEVEL = 3


def tokenizer_path(run: RunContext) -> Path:
    return run.stage_dir("tokenize") / "tokenizer.json"


def shard_prefix(run: RunContext, name: str) -> Path:
    return run.stage_dir("tokenize") / "shards" / name


def provenance_path(run: RunContext, name: str) -> Path:
    return run.stage_dir("tokenize") / "provenance" / f"{name}.parquet"


def _run_tokenizer(run: RunContext):
    """(tokenizer, sha256) of the run's tokenizer.json."""
    path = tokenizer_path(run)
    return tk.open_tokenizer(path), sha256_file(path)


# ---------------------------------------------------------------- 1. tokenizer

class TokenizerStep(Step):
    name = "tokenizer"

    def __init__(self, input_stage: str, shards: list[dict]):
        self.input_stage = input_stage
        self.shards = shards

    def num_tasks(self, run):
        return 1

    def docs_total(self, run, tasks):
        return None if run.config.tokenize.tokenizer else shard_docs(self.shards, range(len(self.shards)))

    def run_task(self, task: TaskContext) -> TaskResult:
        cfg = task.config.tokenize
        t0 = time.perf_counter()
        if cfg.tokenizer:
            tok, kind = tk.load_tokenizer_file(cfg.tokenizer)
            given = Path(cfg.tokenizer).read_bytes()
            # a tokenizer.json is kept byte for byte; a tiktoken file becomes its HF equivalent
            data = given if kind == "tokenizer.json" else tok.to_str(pretty=True).encode()
            source = {"kind": kind, "file": str(cfg.tokenizer), "file_sha256": sha256_bytes(given)}
        else:
            tok, source = self._train(task)
            data = tok.to_str(pretty=True).encode()
        if tok.token_to_id(cfg.eod_token) is None:
            raise tk.TokenizerError(f"tokenize.eod_token: {cfg.eod_token!r} is not in the tokenizer's vocabulary "
                                    f"({cfg.tokenizer or 'trained'})")
        task.add_output(atomic_write_bytes(tokenizer_path(task.run), data))
        info = {"path": "tokenizer.json", "sha256": sha256_bytes(data), "source": source,
                **tk.describe(tok, cfg.eod_token)}
        return TaskResult(stats={"tokenizer": info}, timing={"wall_s": time.perf_counter() - t0})

    def _train(self, task: TaskContext):
        cfg = task.config.tokenize
        threshold = int(cfg.train_sample * 2**64) if cfg.train_sample < 1 else None
        counts = {"docs": 0, "chars": 0}

        def texts():
            for s in self.shards:
                for doc_id, text, _, _ in read_docs(shard_path(task.run, self.input_stage, s["name"])):
                    tick()
                    # a hash of the id, not a random draw: the sample is the same on every run
                    if threshold is not None and xxhash.xxh3_64_intdigest(doc_id.encode("utf-8")) >= threshold:
                        continue
                    counts["docs"] += 1
                    counts["chars"] += len(text)
                    yield text

        tok = tk.train_bpe(texts(), cfg.vocab_size, cfg.min_frequency)
        got = tok.get_vocab_size(with_added_tokens=True)
        if got < cfg.vocab_size:
            import sys
            print(f"warning: tokenize: asked for vocab_size {cfg.vocab_size}, the corpus gave {got} tokens "
                  f"({counts['docs']} documents, {counts['chars']:,} characters, min_frequency {cfg.min_frequency}); "
                  f"the model's vocabulary follows the tokenizer: add text or lower tokenize.vocab_size",
                  file=sys.stderr, flush=True)
        return tok, {"kind": "trained", "input_stage": self.input_stage, "sample": cfg.train_sample,
                     "min_frequency": cfg.min_frequency, "requested_vocab_size": cfg.vocab_size, **counts}


# ---------------------------------------------------------------- 2. encode

class EncodeStep(ShardBlockStep):
    name = "encode"

    def __init__(self, input_stage: str, shards: list[dict]):
        super().__init__(input_stage, shards)
        self._writers: dict[int, TokenWriter] = {}  # per task (tasks may share this step object)

    def blocks(self, task):
        cfg = task.config.tokenize
        name = self.shard_name(task)
        writer = TokenWriter(shard_path(task.run, self.input_stage, name), tokenizer_path(task.run),
                             shard_prefix(task.run, name), provenance_path(task.run, name), cfg.eod_token,
                             cfg.max_sequence_tokens, cfg.batch_bytes)
        self._writers[task.index] = writer
        return [writer]

    def run_task(self, task):
        result = super().run_task(task)
        w = stats_of(result.stats["blocks"], TokenWriter.name)
        result.stats["shard"] = {"name": self.shard_name(task), "docs": w["documents"], "sequences": w["sequences"],
                                 "tokens": w["tokens"], "split_documents": w["split_documents"]}
        # of the tokenizer the task encoded with (read once it has run: it is loaded lazily)
        result.stats["tokenizer_sha256"] = self._writers.pop(task.index).tokenizer_sha256
        return result


# ---------------------------------------------------------------- 3. merge: megatron prefix + zarr

class MergeStep(Step):
    """Task 0: merged Megatron prefix (builder.add_index in shard order). Task 1: tokens.zarr."""

    name = "merge"

    def __init__(self, shards: list[dict]):
        self.shards = shards

    def num_tasks(self, run):
        return 2

    def run_task(self, task: TaskContext) -> TaskResult:
        t0 = time.perf_counter()
        tok, sha = _run_tokenizer(task.run)
        dtype = tk.token_dtype(tok.get_vocab_size(with_added_tokens=True))
        stats = self._megatron(task, dtype) if task.index == 0 else self._zarr(task, dtype)
        return TaskResult(stats={**stats, "tokenizer_sha256": sha}, timing={"wall_s": time.perf_counter() - t0})

    def _megatron(self, task: TaskContext, dtype) -> dict:
        out = task.stage_dir / MERGED_PREFIX
        with atomic_path(f"{out}.bin") as tmp_bin, atomic_path(f"{out}.idx") as tmp_idx:
            builder = indexed_dataset().IndexedDatasetBuilder(str(tmp_bin), dtype=dtype)
            try:
                for s in self.shards:
                    builder.add_index(str(shard_prefix(task.run, s["name"])))
                builder.finalize(str(tmp_idx))
            finally:
                builder.data_file.close()
        for ext in (".bin", ".idx"):
            task.add_output(Path(f"{out}{ext}"))     # its marker records their sha256 (the manifest's)
        return {"prefix": MERGED_PREFIX, "sequences": len(builder.sequence_lengths), "documents": len(builder.document_indices) - 1}

    def _zarr(self, task: TaskContext, dtype) -> dict:
        """tokens (1-D, chunked, zstd), sequence_offsets and document_offsets, in merged order."""
        import zarr
        from zarr.codecs import ZstdCodec
        seq_lens, doc_seqs, shard_tokens = [], [], []
        for s in self.shards:
            t = pq.read_table(provenance_path(task.run, s["name"]), columns=["token_start", "token_end", "part"])
            lens = (t.column("token_end").to_numpy() - t.column("token_start").to_numpy()).astype(np.int64)
            seq_lens.append(lens)
            doc_seqs.append(np.flatnonzero(t.column("part").to_numpy() == 0))
            shard_tokens.append(int(lens.sum()))
        seq_off = np.concatenate([[0], np.cumsum(np.concatenate(seq_lens) if seq_lens else [])]).astype(np.int64)
        first_seq, base = [], 0
        for lens, firsts in zip(seq_lens, doc_seqs):
            first_seq.append(firsts + base)
            base += len(lens)
        doc_first = np.concatenate(first_seq + [np.array([base])]).astype(np.int64)
        doc_off = seq_off[doc_first]
        total = int(seq_off[-1])

        final = task.stage_dir / ZARR_DIR
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        chunk = task.config.tokenize.zarr_chunk_tokens
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        opts = dict(compressors=ZstdCodec(level=ZARR_LEVEL), fill_value=0, config={"write_empty_chunks": True})
        tokens = group.create_array("tokens", shape=(total,), chunks=(max(1, min(chunk, total)),), dtype=dtype, **opts)
        for name, arr in (("sequence_offsets", seq_off), ("document_offsets", doc_off)):
            a = group.create_array(name, shape=arr.shape, chunks=(max(1, min(chunk, len(arr))),), dtype=np.int64, **opts)
            a[:] = arr
        # stream the shard .bin files through a chunk-sized buffer: memory stays one chunk
        buf, fill, written = np.empty(max(1, min(chunk, total)), dtype=dtype), 0, 0
        for s, n in zip(self.shards, shard_tokens):
            path = f"{shard_prefix(task.run, s['name'])}.bin"
            if os.path.getsize(path) != n * np.dtype(dtype).itemsize:
                raise RuntimeError(f"{path}: holds {os.path.getsize(path)} bytes, its provenance says {n} tokens")
            with open(path, "rb") as fh:
                while True:
                    got = fh.readinto(memoryview(buf[fill:]).cast("B"))
                    if not got:
                        break
                    fill += got // buf.itemsize
                    if fill == len(buf):
                        tokens[written:written + fill] = buf
                        written, fill = written + fill, 0
        if fill:
            tokens[written:written + fill] = buf[:fill]
            written += fill
        group.attrs.update({"dtype": np.dtype(dtype).name, "tokens": total, "documents": len(doc_off) - 1,
                            "sequences": len(seq_off) - 1,
                            "shards": [{"name": s["name"], "tokens": n} for s, n in zip(self.shards, shard_tokens)]})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for p in sorted(final.rglob("*")):
            if p.is_file():
                task.add_output(p)
        return {"zarr": ZARR_DIR, "tokens": written}


# ---------------------------------------------------------------- manifest

def write_manifest(run: RunContext, input_stage: str, record: dict | None, tokenizer: dict,
                   encode: list[dict], merge: list[dict]) -> dict:
    """`tokenize/manifest.json`: what the trainer and an auditor need, paths relative to tokenize/."""
    digest = recorded_outputs(run, "tokenize")     # hashed once, when each task's marker was written
    shards, tokens, seqs, docs = [], 0, 0, 0
    for t in encode:
        s = t["shard"]
        prefix = f"shards/{s['name']}"
        shards.append({**s, "prefix": prefix, "provenance": f"provenance/{s['name']}.parquet",
                       "token_offset": tokens, "sequence_offset": seqs, "document_offset": docs,
                       "bin_sha256": digest[f"{prefix}.bin"], "idx_sha256": digest[f"{prefix}.idx"]})
        tokens, seqs, docs = tokens + s["tokens"], seqs + s["sequences"], docs + s["docs"]
    merged = merge[0]
    if (merged["sequences"], merged["documents"], merge[1]["tokens"]) != (seqs, docs, tokens):
        raise RuntimeError(f"tokenize: merged outputs ({merged['sequences']} sequences, {merged['documents']} "
                           f"documents, {merge[1]['tokens']} zarr tokens) do not match the shards "
                           f"({seqs}, {docs}, {tokens})")
    manifest = TokenizeManifest(
        format=MANIFEST_FORMAT, input_stage=input_stage, filter=record, unfiltered=record is None,
        tokenizer=tokenizer, dtype=tokenizer["dtype"], eod_id=tokenizer["eod_id"], vocab_size=tokenizer["vocab_size"],
        max_sequence_tokens=run.config.tokenize.max_sequence_tokens, documents=docs, sequences=seqs, tokens=tokens,
        split_documents=sum(s["split_documents"] for s in shards),
        merged={"prefix": MERGED_PREFIX, "bin_sha256": digest[f"{MERGED_PREFIX}.bin"],
                "idx_sha256": digest[f"{MERGED_PREFIX}.idx"]},
        zarr=ZARR_DIR, shards=shards)
    manifest.write(run.stage_dir("tokenize"))
    manifest = dataclasses.asdict(manifest)
    return manifest
