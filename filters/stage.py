"""Stage `cbrn`: every document of the input stage through the CBRN filter, one task per shard.

Ledger: removed rows carry the filter's decision detail (matched terms, lists, tiers, counts, short
context, score, threshold, policy) plus `sha256`, `source` and `line` (the input file and line) and
`record_source` (the record's own source field) of the text — not the text.
Kept rows carry the detail (with `source`) when the document matched any lexicon term (the hard
negatives a reviewer wants to see) or another policy level would remove it (so the audit can show each
level's cost on the run), else `{}`. Filter failures quarantine the document with `cbrn_error` (fail closed);
a filter that cannot load fails the stage. `removed/<shard>.jsonl.zst` lists the removed documents
(id, sha256, source, line, reason, score, terms; the text only with `cbrn.keep_removed_text`).
stats.json adds `filter` (lexicon/model sha256, threshold, policy: what the tokenize manifest records),
`scores` (histograms of kept vs removed; `unscored` counts documents decided without the classifier), `terms` / `kept_terms` / `lists` (matched-term counts).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from common.io import ZstdLineWriter, canonical_json, sha256_bytes
from pipeline.block import Block, stats_of
from pipeline.context import RunContext, TaskContext
from pipeline.shards import ShardWriter
from pipeline.stage import ShardFilterStep, Stage, input_shards, merge_block_stats, merge_books

SCORE_BINS = [round(i / 20, 2) for i in range(21)]


class CbrnBlock(Block):
    name = "cbrn_filter"

    def __init__(self, removed_path, cfg):
        from filters.decide import CbrnFilter, audit_record
        self.filter = CbrnFilter.from_config(cfg)
        self.audit_record = audit_record
        self.cfg = cfg
        self.removed_path = removed_path
        self.hist = {"kept": np.zeros(20, np.int64), "removed": np.zeros(20, np.int64)}
        self.unscored = Counter()   # documents the policy decided without the classifier
        self.terms, self.kept_terms, self.lists = Counter(), Counter(), Counter()

    def run(self, docs, task: TaskContext):
        with ZstdLineWriter(self.removed_path) as removed_out:
            batch = []
            for doc in docs:
                batch.append(doc)
                if len(batch) >= self.cfg.batch_size:
                    yield from self._flush(batch, task, removed_out)
                    batch = []
            yield from self._flush(batch, task, removed_out)
        task.add_output(self.removed_path)

    def _flush(self, batch, task, removed_out):
        if not batch:
            return
        decisions = self.filter.decide_batch([d.text for d in batch])
        for doc, dec in zip(batch, decisions):
            if dec.decision == "error":
                task.quarantine(doc.id, dec.reason, dec.detail)
                continue
            self._count(dec)
            origin = doc.origin()
            if dec.decision == "keep":
                # kept with a term (a hard negative), removed by another level, or scored by the classifier:
                # the ledger says why it stayed and with what score (every scored document can be found)
                if dec.terms or dec.detail.get("levels") or dec.score is not None:
                    yield _with_detail(doc, dict(dec.detail, source=origin["source"]))
                else:
                    yield doc
                continue
            detail = dict(dec.detail, sha256=sha256_bytes(doc.text.encode("utf-8", "surrogatepass")), **origin)
            task.remove(doc.id, dec.reason, detail)
            rec = self.audit_record(doc.id, doc.text, dec, source=detail["source"], line=detail["line"],
                                    keep_text=self.cfg.keep_removed_text)
            removed_out.write_line(canonical_json(rec))

    def _count(self, dec) -> None:
        side = "removed" if dec.decision == "remove" else "kept"
        if dec.score is not None:
            self.hist[side][min(int(dec.score * 20), 19)] += 1
        else:
            self.unscored[side] += 1
        names = self.terms if side == "removed" else self.kept_terms
        names.update(dec.terms)
        if side == "removed":
            for t in dec.detail.get("terms", []):
                self.lists.update(t.get("lists", []))

    def close(self, task) -> dict:
        return {"scores": {**{k: v.tolist() for k, v in self.hist.items()},
                           "unscored": {k: self.unscored[k] for k in ("kept", "removed")}},
                "terms": dict(self.terms), "kept_terms": dict(self.kept_terms), "lists": dict(self.lists)}


def _with_detail(doc, detail):
    """Mark a kept document that matched terms, so the writer records why it stayed."""
    doc.meta["_cbrn_detail"] = detail
    return doc


def _kept_detail(doc):
    return doc.meta.pop("_cbrn_detail", None)


class CbrnStep(ShardFilterStep):
    def filter_blocks(self, task):
        return [CbrnBlock(task.stage_dir / "removed" / f"{self.shard_name(task)}.jsonl.zst", task.config.cbrn)]

    def writer(self, task, path):
        return ShardWriter(path, keep_detail=_kept_detail)


class CbrnStage(Stage):
    name = "cbrn"
    step_names = ("filter",)

    def steps(self, run: RunContext):
        prev, shards = input_shards(run, self.name)
        return [CbrnStep(prev, shards)]

    def finalize(self, run: RunContext, results: dict[str, list[dict]]) -> dict:
        from filters.decide import CbrnFilter
        prev, _ = input_shards(run, self.name)
        tasks = results["filter"]
        scores = {"bins": SCORE_BINS, "kept": [0] * 20, "removed": [0] * 20, "unscored": {"kept": 0, "removed": 0}}
        terms, kept_terms, lists = Counter(), Counter(), Counter()
        for t in tasks:
            blk = stats_of(t["blocks"], CbrnBlock.name)
            for side in ("kept", "removed"):
                scores[side] = [a + b for a, b in zip(scores[side], blk["scores"][side])]
                scores["unscored"][side] += blk["scores"]["unscored"][side]
            terms.update(blk["terms"])
            kept_terms.update(blk["kept_terms"])
            lists.update(blk["lists"])
        blocks = merge_block_stats([{"blocks": {k: {kk: vv for kk, vv in v.items()
                                                    if kk not in ("scores", "terms", "kept_terms", "lists")}
                                                for k, v in t["blocks"].items()}} for t in tasks])
        return {**merge_books(tasks).to_dict(), "input_stage": prev, "shards": [t["shard"] for t in tasks],
                "blocks": blocks, "filter": CbrnFilter.from_config(run.config.cbrn).fingerprint(),
                "scores": scores, "terms": dict(sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))),
                "kept_terms": dict(sorted(kept_terms.items(), key=lambda kv: (-kv[1], kv[0]))),
                "lists": dict(sorted(lists.items(), key=lambda kv: (-kv[1], kv[0])))}
