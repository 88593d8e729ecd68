"""Stage `tokenize`: filtered documents -> Megatron .bin/.idx shards (megatron-core's own builder) + zarr.

Steps (a barrier between them):
  1. `tokenizer` (1 task): the run's tokenizer at `tokenize/tokenizer.json`: a copy of the configured
     tokenizer.json, a conversion of a tiktoken ranks file, or a byte-level BPE trained on the input
     stage's kept documents (only when `cbrn` ran upstream, unless `allow_unfiltered`).
  2. `encode` (1 task per input shard): batched `encode_batch` overlapped with reading and writing;
     one Megatron document per kept document ending in the end-of-document token, split into
     sequences of at most `max_sequence_tokens`; ledger, provenance table.
  3. `merge` (2 tasks): task 0 concatenates the shards with the builder's `add_index` in shard order
     (`merged/data.bin/.idx`); task 1 writes `tokens.zarr` (tokens + sequence/document offsets).
Then `manifest.json`: tokenizer, dtype, counts per shard, and the filter record the data passed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from common import filter_record as filter_record_mod
from common.config import ConfigError
from pipeline.context import RunContext
from pipeline.stage import Stage, input_shards, load_stats, merge_block_stats, merge_books, recorded_outputs
from pipeline.stages import spec


@dataclass(kw_only=True)
class TokenizeConfig:
    tokenizer: str = ""                  # tokenizer.json or tiktoken ranks file; "" = train one
    vocab_size: int = 32768              # when training: total size, special tokens included
    min_frequency: int = 2               # when training: a pair must occur this often to merge
    train_sample: float = 1.0            # when training: fraction of kept documents (by id hash)
    allow_unfiltered: bool = False       # train on / tokenize data that did not pass the cbrn stage
    eod_token: str = "<|endoftext|>"     # ends every document
    max_sequence_tokens: int = 32768     # longer documents are split into several sequences
    batch_bytes: int = 4_000_000         # text per encode_batch call
    zarr_chunk_tokens: int = 1 << 20     # tokens per zarr chunk

    def validate(self) -> None:
        if not 300 <= self.vocab_size <= 1 << 31:
            raise ConfigError(f"tokenize.vocab_size: must be in [300, 2^31] (256 bytes + special tokens), "
                              f"got {self.vocab_size}")
        if self.min_frequency < 1:
            raise ConfigError("tokenize.min_frequency: must be >= 1")
        if not 0.0 < self.train_sample <= 1.0:
            raise ConfigError(f"tokenize.train_sample: must be in (0, 1], got {self.train_sample}")
        if not self.eod_token:
            raise ConfigError("tokenize.eod_token: must not be empty")
        if self.max_sequence_tokens < 2:
            raise ConfigError("tokenize.max_sequence_tokens: must be >= 2 (one token and the end-of-document)")
        if self.batch_bytes < 1:
            raise ConfigError("tokenize.batch_bytes: must be >= 1")
        if self.zarr_chunk_tokens < 1:
            raise ConfigError("tokenize.zarr_chunk_tokens: must be >= 1")


def filter_stage_upstream(run: RunContext, input_stage: str) -> str | None:
    """The CBRN filter stage the input passed on its way here: follow each data stage's recorded input
    stage back from `input_stage`; None when no stage on the way is the filter."""
    stage, seen = input_stage, set()
    while stage and stage not in seen:
        seen.add(stage)
        if spec(stage).cbrn_filter:
            return stage
        stage = (load_stats(run, stage) or {}).get("input_stage")
    return None


def filter_record(run: RunContext, input_stage: str) -> dict | None:
    """The filter record of the CBRN stage upstream of `input_stage` (its fingerprint and the sha256 of
    its stats and ledgers), None when the data did not pass the filter."""
    stage = filter_stage_upstream(run, input_stage)
    if stage is None:
        return None
    fingerprint = (load_stats(run, stage) or {}).get("filter")
    if not isinstance(fingerprint, dict) or not fingerprint:
        raise RuntimeError(f"{run.stage_dir(stage) / 'stats.json'}: no 'filter' record; the tokenize stage "
                           f"will not label its output as filtered without one")
    record = filter_record_mod.build(fingerprint, run.stage_dir(stage), recorded_outputs(run, stage))
    filter_record_mod.check(record, where="tokenize", stage_dir=run.stage_dir(stage))  # what the trainer checks
    return record


class TokenizeStage(Stage):
    name = "tokenize"
    step_names = ("tokenizer", "encode", "merge")

    def steps(self, run: RunContext):
        from pipeline.tokenize_steps import EncodeStep, MergeStep, TokenizerStep
        cfg: TokenizeConfig = run.config.tokenize
        prev, shards = input_shards(run, self.name)
        record = filter_record(run, prev)
        if cfg.tokenizer and not Path(cfg.tokenizer).is_file():
            raise ConfigError(f"tokenize.tokenizer: file not found: {cfg.tokenizer}")
        if record is None:
            if not cfg.tokenizer and not cfg.allow_unfiltered:
                raise ConfigError(
                    f"tokenize: refusing to train a tokenizer on unfiltered text (no cbrn stage upstream of the "
                    f"input stage {prev!r}); run the cbrn stage, give tokenize.tokenizer = FILE, or set "
                    f"tokenize.allow_unfiltered = true")
        return [TokenizerStep(prev, shards), EncodeStep(prev, shards), MergeStep(shards)]

    def finalize(self, run: RunContext, results: dict[str, list[dict]]) -> dict:
        from pipeline.tokenize_steps import write_manifest
        prev, _ = input_shards(run, self.name)
        enc = results["encode"]
        tokenizer = results["tokenizer"][0]["tokenizer"]
        stale = [t["shard"]["name"] for t in enc if t["tokenizer_sha256"] != tokenizer["sha256"]]
        stale += [f"merge task {i}" for i, t in enumerate(results["merge"]) if t["tokenizer_sha256"] != tokenizer["sha256"]]
        if stale:
            raise RuntimeError(f"tokenize: {', '.join(stale[:5])} were made with another tokenizer than "
                               f"tokenize/tokenizer.json; remove tokenize/_tasks to redo them")
        books = merge_books(enc)
        record = filter_record(run, prev)
        if record is None:
            print(f"[tokenize] WARNING: no cbrn stage upstream of {prev!r}: these tokens are UNFILTERED "
                  f"(manifest.json says \"filter\": null)", file=sys.stderr)
        manifest = write_manifest(run, prev, record, tokenizer, enc, results["merge"])
        return {**books.to_dict(), "input_stage": prev, "shards": [t["shard"] for t in enc],
                "blocks": merge_block_stats(enc), "tokenizer": tokenizer,
                "tokens": manifest["tokens"], "sequences": manifest["sequences"],
                "documents": manifest["documents"], "split_documents": manifest["split_documents"],
                "dtype": manifest["dtype"], "filter": record, "unfiltered": record is None}
