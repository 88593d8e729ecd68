"""The shared real corpus (`../shared/data/corpus`) as ordinary-text training negatives and as the held-out
sample for the corpus false-positive rate.

Every corpus document falls in one of three fixed, disjoint splits by a salted hash of its id:

  train  (40 %)  the pool for training negatives: documents with no lexicon hit at all and no CBRN-topic
                 phrase (TOPIC), a seeded sample per source, one 150-word window each
  calib  (30 %)  calibration of the no-term threshold to a target corpus removal rate (never trained on)
  report (30 %)  what the benchmark reports (never trained or calibrated on)

Wikipedia leads whose titles are in the labeled set (train.jsonl or dev.jsonl, `real text (Wikipedia
summary '<title>'`) are left out of every split: dev items must never be trained or calibrated on, and train
items are already labeled.
"""
from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

SPLIT_SALT = "cbrn-corpus-split"
NEG_SALT = "cbrn-corpus-neg"
REAL_TITLE = re.compile(r"real text \(Wikipedia summary '(.*?)',")
# a corpus document that says one of these is not presumed negative (it may be a CBRN-topic text without a term)
TOPIC = re.compile(r"chemical (?:weapon|warfare)|biological (?:weapon|warfare)|bioweapon|nerve (?:gas|agent)|bioterror|"
                   r"germ warfare|poison gas|atomic bomb|nuclear (?:weapon|bomb|warhead)|radiological|dirty bomb|"
                   r"mass destruction", re.I)

# training negatives per source (about 6,000 in all): proportional to the corpus, with the prose sources raised
CORPUS_LABELS = Path(__file__).parent / "corpus_labels.tsv"

DEFAULT_NEGATIVES_PER_SOURCE = {"gcide": 2000, "wordnet": 1200, "linux_docs": 600, "fortunes": 600,
                                "wikipedia_vital": 800, "python_docs": 400, "jargon": 200, "*": 100}


def _bucket(salt: str, doc_id: str, mod: int) -> int:
    return int(hashlib.sha256(f"{salt}:{doc_id}".encode()).hexdigest()[:8], 16) % mod


def split_of(doc_id: str) -> str:
    b = _bucket(SPLIT_SALT, doc_id, 10)
    return "train" if b < 4 else ("calib" if b < 7 else "report")


def labeled_titles(paths) -> set[str]:
    """Titles of the real Wikipedia leads in labeled JSONL files (their `note` names them)."""
    import orjson
    out = set()
    for p in paths:
        p = Path(p)
        if not p.is_file():
            continue
        for line in p.read_bytes().splitlines():
            if line.strip():
                m = REAL_TITLE.match(str(orjson.loads(line).get("note", "")))
                if m:
                    out.add(m.group(1))
    return out


def iter_corpus(corpus_dir: str | Path, exclude_titles: set[str] = frozenset()) -> Iterator[dict]:
    """Corpus records in file and line order, with `split` added; labeled Wikipedia titles left out."""
    from common.io import read_jsonl
    files = sorted(Path(corpus_dir).glob("*.jsonl.zst"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl.zst in {corpus_dir}")
    for f in files:
        for rec in read_jsonl(f):
            if rec.get("source") == "wikipedia_vital" and (rec.get("meta") or {}).get("title") in exclude_titles:
                continue
            rec["split"] = split_of(rec["id"])
            yield rec


def window(text: str, chunk_words: int = 150, overlap_words: int = 40) -> str:
    """One classifier window of the document, picked by its hash (long documents are not only their start)."""
    from filters.classifier import chunks
    cs = chunks(text, chunk_words, overlap_words)
    return cs[int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % len(cs)]


def select_negatives(records, has_hit, per_source: dict | None = None) -> list[dict]:
    """The training negatives: `train`-split documents with no lexicon hit (`has_hit(texts) -> list[bool]`)
    and no TOPIC phrase, the first `per_source[source]` (or `per_source["*"]`) by a salted hash of the id.
    Returns [{"id", "source", "text"}] with `text` one window of the document, in a stable order."""
    per_source = per_source or DEFAULT_NEGATIVES_PER_SOURCE
    pool = defaultdict(list)
    for r in records:
        if r["split"] == "train" and r["text"].strip() and not TOPIC.search(r["text"]):
            pool[r["source"]].append(r)
    out = []
    for src in sorted(pool):
        n = per_source.get(src, per_source.get("*", 0))
        cand = sorted(pool[src], key=lambda r: hashlib.sha256(f"{NEG_SALT}:{r['id']}".encode()).hexdigest())
        picked = []
        for i in range(0, len(cand), 512):  # match in batches until enough clean documents are found
            batch = cand[i:i + 512]
            hits = has_hit([r["text"] for r in batch])
            picked += [r for r, h in zip(batch, hits) if not h]
            if len(picked) >= n:
                break
        out += [{"id": r["id"], "source": src, "text": window(r["text"])} for r in picked[:n]]
    return out


def read_corpus_labels(records, path: str | Path = CORPUS_LABELS) -> list[dict]:
    """Labeled rows {"text", "label", "note"} for the hand-labeled corpus documents (`id<TAB>label<TAB>title`
    lines). Every id must be in the `train` split (never calib or report) and present in `records`; an
    error names the file, the line and the id."""
    by_id = {r["id"]: r for r in records}
    out = []
    path = Path(path)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3 or parts[1] not in ("0", "1"):
            raise ValueError(f"{path}:{lineno}: expected 'id<TAB>label<TAB>title' with label 0 or 1")
        doc_id, label, title = parts
        if split_of(doc_id) != "train":
            raise ValueError(f"{path}:{lineno}: {doc_id!r} is in the {split_of(doc_id)} split; only train may be labeled")
        if doc_id not in by_id:
            raise ValueError(f"{path}:{lineno}: {doc_id!r} is not in the corpus")
        out.append({"text": by_id[doc_id]["text"], "label": int(label), "note": f"corpus hand-labeled; {title}"})
    return out
