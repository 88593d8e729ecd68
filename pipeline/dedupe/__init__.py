"""Stage `dedupe`: exact + MinHash-LSH near dedupe across the whole input, sharded like datatrove.

Steps (each a set of parallel tasks, a barrier between them):
  1. `signatures` (one task per input shard): exact-text hash, id hash, MinHash signature and band
     keys per document; keys written per hash partition, so step 2 reads only its slice.
  2. `buckets` (one task per hash partition; as many partitions as the data needs, see
     `bucket_partitions`): sort (kind, key) pairs of every shard for this partition, turn equal keys
     into candidate pairs and verify each one (same id string; same 128-bit text hash; estimated
     Jaccard of full signatures >= threshold). Memory is bounded by the partition's slice, not the
     corpus.
  3. `clusters` (one task): compiled union-find streaming the verified edges from disk into a dense
     parent array (a few bytes per document), the first document in the deterministic order of each
     group kept; decision arrays (number, kind, kept document, cluster).
  4. `filter` (one task per shard): apply the decisions, building each removed document's detail
     (kept id, cluster, estimated Jaccard) in parallel; kept shard + ledger.
Order: shard order of the input stage, then position in the shard. Resume is per task, so per shard.
"""
from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError
from pipeline.context import RunContext
from pipeline.stage import Stage, input_shards, merge_block_stats, merge_books

EXACT_NORMALIZATIONS = ("none", "whitespace", "lower_whitespace")


@dataclass(kw_only=True)
class DedupeConfig:
    exact: bool = True
    near: bool = True
    exact_normalize: str = "whitespace"   # collapse whitespace runs before hashing exact text
    shingle_size: int = 5                 # words per shingle
    bands: int = 20
    rows: int = 5
    threshold: float = 0.7                # estimated Jaccard a candidate pair must reach; 0 = no check
    partitions: int = 0                   # band partitions (bucket tasks); 0 = sized from the data
    task_memory_mb: int = 512             # a bucket task's key rows; the cluster step's edge chunks
    seed: int = 42

    def validate(self) -> None:
        if self.exact_normalize not in EXACT_NORMALIZATIONS:
            raise ConfigError(f"dedupe.exact_normalize: expected one of {EXACT_NORMALIZATIONS}, "
                              f"got {self.exact_normalize!r}")
        for k in ("shingle_size", "bands", "rows"):
            if getattr(self, k) < 1:
                raise ConfigError(f"dedupe.{k}: must be >= 1")
        if self.partitions < 0:
            raise ConfigError("dedupe.partitions: must be >= 0 (0 = sized from the data)")
        if self.task_memory_mb < 16:
            raise ConfigError("dedupe.task_memory_mb: must be >= 16")
        if self.bands * self.rows > 1024:
            raise ConfigError("dedupe.bands * dedupe.rows: at most 1024 hashes per signature")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("dedupe.threshold: must be in [0, 1]")
        if self.bands > 60000:
            raise ConfigError("dedupe.bands: too many")


class DedupeStage(Stage):
    name = "dedupe"
    step_names = ("signatures", "buckets", "clusters", "filter")

    def steps(self, run: RunContext):
        from pipeline.dedupe.steps import BucketStep, ClusterStep, FilterStep, SignatureStep
        prev, shards = input_shards(run, self.name)
        return [SignatureStep(prev, shards), BucketStep(shards), ClusterStep(shards), FilterStep(prev, shards)]

    def finalize(self, run: RunContext, results: dict[str, list[dict]]) -> dict:
        prev, _ = input_shards(run, self.name)
        filt = results["filter"]
        books = merge_books(filt)
        shards = [t["shard"] for t in filt]
        cluster = results["clusters"][0]
        edges = {}
        for t in results["buckets"]:
            for k, v in t["edges"].items():
                edges[k] = edges.get(k, 0) + v
        candidates = {}
        for t in results["buckets"]:
            for k, v in t["candidates"].items():
                candidates[k] = candidates.get(k, 0) + v
        cfg = run.config.dedupe
        return {**books.to_dict(), "input_stage": prev, "shards": shards,
                "blocks": merge_block_stats(filt),
                "lsh": {"bands": cfg.bands, "rows": cfg.rows, "shingle_size": cfg.shingle_size,
                        "threshold": cfg.threshold, "candidate_pairs": candidates, "verified_edges": edges},
                "clusters": cluster["clusters"]}
