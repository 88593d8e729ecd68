"""Stage `ingest`: input files -> validated, normalised documents in shards; bad records quarantined.

One task per input file (so resume is per file). Output shards are `<file>-<chunk>` with at most
`docs_per_shard` documents, so one huge file still gives later stages many shards to spread out.
"""
from __future__ import annotations

import base64
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import Iterator

from common import reasons
from common.config import ConfigError
from common.io import ZstdLineWriter, canonical_json
from pipeline.block import Block, stats_of
from pipeline.document import Document
from pipeline.readers import InputFile, iter_records, plan_parts, resolve_inputs
from pipeline.context import RunContext, TaskContext
from pipeline.stage import BlockStep, Stage, merge_block_stats, merge_books

NORMALIZATIONS = ("NFC", "NFKC", "NFD", "NFKD", "none")


@dataclass(kw_only=True)
class IngestConfig:
    inputs: list[str] = field(default_factory=list)   # files, directories or globs; empty = demo corpus
    text_field: str = "text"
    id_field: str = "id"
    source_field: str = "source"
    max_text_bytes: int = 4_000_000
    unicode_normalization: str = "NFC"
    docs_per_shard: int = 50_000
    # a big input file is read by several tasks: parts of about split_bytes (of decompressed JSON lines,
    # parquet data or the Arrow data of an HF datasets directory), at most max_parts_per_file per file;
    # 0 = one task per file. Part of the run's identity (shard names follow the parts), never of the
    # worker count.
    split_bytes: int = 8 << 20
    max_parts_per_file: int = 64

    def validate(self) -> None:
        if self.unicode_normalization not in NORMALIZATIONS:
            raise ConfigError(f"ingest.unicode_normalization: expected one of {NORMALIZATIONS}, "
                              f"got {self.unicode_normalization!r}")
        if self.max_text_bytes < 1:
            raise ConfigError("ingest.max_text_bytes: must be >= 1")
        if self.docs_per_shard < 1:
            raise ConfigError("ingest.docs_per_shard: must be >= 1")
        if self.split_bytes < 0 or self.max_parts_per_file < 1:
            raise ConfigError("ingest.split_bytes must be >= 0 (0 = no split) and ingest.max_parts_per_file >= 1")
        for name in ("text_field", "id_field"):
            if not getattr(self, name):
                raise ConfigError(f"ingest.{name}: must not be empty")


def _raw_for_quarantine(raw: bytes | None, obj) -> dict:
    if raw is not None:
        try:
            return {"raw": raw.decode("utf-8")}
        except UnicodeDecodeError:
            return {"raw_b64": base64.b64encode(raw).decode("ascii")}
    if obj is not None:
        return {"raw": canonical_json(_jsonable(obj))}
    return {}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bytes):
        return {"b64": base64.b64encode(obj).decode("ascii")}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


class InputReader(Block):
    """Reads one input file; yields valid documents and quarantines the rest (raw kept on disk)."""

    name = "input_reader"

    def __init__(self, inp: InputFile, cfg: IngestConfig, quarantine_path, part: tuple | None = None):
        self.inp = inp
        self.cfg = cfg
        self.quarantine_path = quarantine_path
        self.part = part            # (start, end, first_line) of a split file, None = the whole file
        self.normalized_changed = 0

    def run(self, docs, task: TaskContext) -> Iterator[Document]:
        cfg, inp = self.cfg, self.inp
        seen_ids: set[str] = set()
        form = cfg.unicode_normalization
        with ZstdLineWriter(self.quarantine_path) as qw:
            def quarantine(line: int, reason: str, message: str, raw=None, obj=None, own_id=None):
                pos_id = f"{inp.rel}:{line}"
                detail = {"file": inp.rel, "line": line, "error": message}
                if own_id is not None:
                    detail["id"] = own_id
                task.quarantine(pos_id, reason, detail)
                qw.write_line(canonical_json({"id": pos_id, "reason": reason, **detail,
                                              **_raw_for_quarantine(raw, obj)}))

            for rec in iter_records(inp, part=self.part):
                if rec.error:
                    quarantine(rec.line, rec.error, rec.message, raw=rec.raw)
                    continue
                obj = rec.obj
                if not isinstance(obj, dict):
                    quarantine(rec.line, reasons.NOT_AN_OBJECT, f"record is a {type(obj).__name__}, not an object",
                               raw=rec.raw, obj=obj)
                    continue
                # id first, so later quarantines can name it
                own_id = None
                if cfg.id_field in obj and obj[cfg.id_field] is not None:
                    v = obj[cfg.id_field]
                    if isinstance(v, str) and v.strip():
                        own_id = v
                    elif isinstance(v, int) and not isinstance(v, bool):
                        own_id = str(v)
                    else:
                        quarantine(rec.line, reasons.BAD_ID,
                                   f"field {cfg.id_field!r} must be a non-empty string or integer, "
                                   f"got {type(v).__name__}", raw=rec.raw, obj=obj)
                        continue
                text = obj.get(cfg.text_field)
                if text is None:
                    quarantine(rec.line, reasons.MISSING_TEXT, f"field {cfg.text_field!r} is missing or null",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                if not isinstance(text, str):
                    quarantine(rec.line, reasons.TEXT_NOT_STRING,
                               f"field {cfg.text_field!r} is a {type(text).__name__}, not a string",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                if len(text) > cfg.max_text_bytes or (len(text) * 4 > cfg.max_text_bytes
                                                       and len(text.encode("utf-8", "surrogatepass")) > cfg.max_text_bytes):
                    quarantine(rec.line, reasons.TEXT_TOO_LARGE,
                               f"field {cfg.text_field!r} is over ingest.max_text_bytes={cfg.max_text_bytes}",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                if not text.strip():
                    quarantine(rec.line, reasons.EMPTY_TEXT, f"field {cfg.text_field!r} is empty or whitespace",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as e:  # lone surrogates from a permissive source
                    quarantine(rec.line, reasons.INVALID_UTF8, f"text holds unencodable code points: {e.reason}",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                doc_id = own_id if own_id is not None else f"{inp.rel}:{rec.line}"
                if doc_id in seen_ids:
                    # within the task's part; across files or parts of a split file the dedupe stage checks
                    quarantine(rec.line, reasons.DUPLICATE_ID, f"id {doc_id!r} already used earlier in this file",
                               raw=rec.raw, obj=obj, own_id=own_id)
                    continue
                seen_ids.add(doc_id)
                if form != "none" and not unicodedata.is_normalized(form, text):
                    text = unicodedata.normalize(form, text)
                    self.normalized_changed += 1
                source = obj.get(cfg.source_field)
                usable_source = isinstance(source, str) and bool(source)
                if not usable_source:
                    source = inp.rel
                meta = {}
                if isinstance(obj.get("meta"), dict):
                    meta.update(_jsonable(obj["meta"]))
                # every other field goes to meta, and so does a meta or source value that could not be
                # used as such (a number, a list, ...): nothing of the record is dropped
                skip = {cfg.text_field, cfg.id_field}
                skip |= {cfg.source_field} if usable_source else set()
                skip |= {"meta"} if isinstance(obj.get("meta"), dict) else set()
                for k, v in obj.items():
                    if k not in skip and k not in meta and not (k in (cfg.source_field, "meta") and v is None):
                        meta[k] = _jsonable(v)
                meta["_src"] = {"file": inp.rel, "line": rec.line}
                yield Document(id=doc_id, text=text, source=source, meta=meta)
        task.add_output(self.quarantine_path)

    def close(self, task) -> dict:
        return {"normalized_changed": self.normalized_changed}


class RollingShardWriter(Block):
    """Writes kept documents into `<prefix>-<chunk>` shards of at most `per_shard` documents."""

    name = "shard_writer"

    def __init__(self, shard_dir, prefix: str, per_shard: int):
        self.shard_dir = shard_dir
        self.prefix = prefix
        self.per_shard = per_shard
        self.shards: list[dict] = []

    def run(self, docs, task):
        writer, chunk = None, 0
        try:
            for d in docs:
                if writer is None or writer.count >= self.per_shard:
                    if writer is not None:
                        self._finish(writer, task)
                    name = f"{self.prefix}-{chunk:04d}"
                    writer = ZstdLineWriter(self.shard_dir / f"{name}.jsonl.zst")
                    writer.shard_name = name
                    chunk += 1
                writer.write_line(d.to_json())
                task.keep(d)
            if writer is not None:
                self._finish(writer, task)
                writer = None
        finally:
            if writer is not None:
                writer.abort()
        return
        yield

    def _finish(self, writer, task):
        task.add_output(writer.close())
        self.shards.append({"name": writer.shard_name, "docs": writer.count})

    def close(self, task) -> dict:
        return {"shards": self.shards}


class IngestStep(BlockStep):
    """One task per part of an input file (a small file is one part), in input order."""

    name = "read"

    def __init__(self, inputs: list[InputFile]):
        self.inputs = inputs
        self.tasks = [(inp, part) for inp in inputs for part in (inp.parts or (None,))]

    def num_tasks(self, run: RunContext) -> int:
        return len(self.tasks)

    def blocks(self, task: TaskContext) -> list[Block]:
        cfg: IngestConfig = task.config.ingest
        inp, part = self.tasks[task.index]
        prefix = f"{task.index:05d}"
        return [InputReader(inp, cfg, task.stage_dir / "quarantine" / f"{prefix}.jsonl.zst", part),
                RollingShardWriter(task.stage_dir / "shards", prefix, cfg.docs_per_shard)]

    def run_task(self, task: TaskContext):
        result = super().run_task(task)
        inp, part = self.tasks[task.index]
        result.stats["input"] = inp.rel   # the audit's per-input-file table
        if part is not None:
            result.stats["part"] = list(part)
        return result


def stage_inputs(run: RunContext) -> list[InputFile]:
    """The input list is resolved once and recorded, so every task and re-run sees the same list.

    Paths inside the run directory are recorded relative to it, so a run directory can move.
    """
    import os
    from common.io import atomic_write_json, read_json
    path = run.stage_dir("ingest") / "inputs.json"
    root = os.path.abspath(run.run_dir)

    def load() -> list[InputFile]:
        return [InputFile(**{**d, "path": os.path.join(root, d["path"]) if not os.path.isabs(d["path"]) else d["path"],
                             "parts": tuple(tuple(p) for p in d.get("parts") or ())})
                for d in read_json(path)]

    if path.is_file():
        return load()
    patterns = list(run.config.ingest.inputs)
    if not patterns:
        from pipeline.democorpus import ensure_demo_corpus
        patterns = [str(ensure_demo_corpus(run))]
        print(f"note: no --input given: ingesting the built-in demo corpus ({patterns[0]}); pass --input PATH "
              f"(file, directory or glob) for your own data", file=sys.stderr)
    recorded = []
    cfg: IngestConfig = run.config.ingest
    inputs = resolve_inputs(patterns)
    # planning a compressed file decompresses it once; zlib and zstd release the GIL, so threads plan several
    # files at once (the plans are a function of each file alone: the order of the list is the inputs')
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max(1, min(run.config.run.workers, len(inputs)))) as pool:
        plans = list(pool.map(lambda i: plan_parts(i, cfg.split_bytes, cfg.max_parts_per_file), inputs))
    for i, parts in zip(inputs, plans):
        p = i.path
        if os.path.commonpath([p, root]) == root:
            p = os.path.relpath(p, root)
        if parts:   # recorded: every task reads the same plan
            print(f"[ingest] {i.rel}: read by {len(parts)} tasks (ingest.split_bytes={cfg.split_bytes})",
                  file=sys.stderr)
        recorded.append({**vars(i), "path": p, "parts": [list(x) for x in parts]})
    atomic_write_json(path, recorded)
    return load()


class IngestStage(Stage):
    name = "ingest"
    step_names = ("read",)

    def steps(self, run: RunContext):
        return [IngestStep(stage_inputs(run))]

    def finalize(self, run: RunContext, results: dict[str, list[dict]]) -> dict:
        tasks = results["read"]
        books = merge_books(tasks)
        shards = []
        for t in tasks:
            shards.extend(stats_of(t["blocks"], "shard_writer").get("shards", []))
        blocks = merge_block_stats([{"blocks": {k: {kk: vv for kk, vv in v.items() if kk != "shards"}
                                                for k, v in t["blocks"].items()}} for t in tasks])
        return {**books.to_dict(), "input_stage": None, "inputs": len(stage_inputs(run)), "tasks": len(tasks),
                "unicode_normalization": run.config.ingest.unicode_normalization,
                "shards": shards, "blocks": blocks}
