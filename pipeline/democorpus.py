"""The embedded default input: real openly-licensed text the Python install carries, with injected
exact and near duplicates and one bad record of every kind ingest must quarantine.

Text: the Python standard library's own documentation (PSF-2.0): `pydoc_data.topics` and the
docstrings of the stdlib's modules, classes and functions (read with `ast`, nothing is imported).
CBRN-topic documents and hard negatives written for this repo are added when `filters` ships them.
Deterministic for a given Python version and seed. Writes `ground_truth.json` beside the data.
"""
from __future__ import annotations

import ast
import io
import os
import random
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import orjson

from common.config import ConfigError
from common.io import ZstdLineWriter, atomic_write_bytes, atomic_write_json, gzip_bytes, read_json
from common.paths import refuse_escaping_links


@dataclass(kw_only=True)
class DemoCorpusConfig:
    docs: int = 3000            # base documents (before duplicates and bad records)
    files: int = 4              # .jsonl.zst parts, plus one .jsonl.gz, one .parquet, one bad file
    exact_dupe_rate: float = 0.08
    near_dupe_rate: float = 0.08
    bad_records: bool = True
    include_cbrn: bool = True   # the repo's own CBRN-topic documents and hard negatives
    seed: int = 20261125

    def validate(self) -> None:
        if self.docs < 20:
            raise ConfigError("demo.docs: must be >= 20")
        if not (0 <= self.exact_dupe_rate < 0.5 and 0 <= self.near_dupe_rate < 0.5):
            raise ConfigError("demo.exact_dupe_rate / near_dupe_rate: must be in [0, 0.5)")
        if self.files < 1:
            raise ConfigError("demo.files: must be >= 1")


_WS = re.compile(r"\s+")


def _clean(text: str) -> str:
    paras = [_WS.sub(" ", p).strip() for p in re.split(r"\n\s*\n", text)]
    return "\n\n".join(p for p in paras if p)


def stdlib_documents(limit: int) -> list[dict]:
    """Up to `limit` documents of stdlib documentation, in a fixed order."""
    docs: list[dict] = []
    import pydoc_data.topics as topics
    for name in sorted(topics.topics):
        text = topics.topics[name]
        paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        buf: list[str] = []
        part = 0
        for p in paras + [None]:
            if p is not None:
                buf.append(p)
            if buf and (p is None or sum(map(len, buf)) > 1500):
                body = _clean("\n\n".join(buf))
                if len(body) > 200:
                    docs.append({"text": body, "source": "python_docs/topics", "meta": {"topic": name, "part": part}})
                    part += 1
                buf = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py")
                   if not any(x in p.parts for x in ("test", "tests", "idlelib", "site-packages", "lib2to3")))
    for path in files:
        if len(docs) >= limit:
            break
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        rel = str(path.relative_to(stdlib))
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in nodes:
            doc = ast.get_docstring(node)
            if not doc or len(doc) < 100:
                continue
            title = getattr(node, "name", rel)
            docs.append({"text": _clean(doc), "source": "python_docs/docstrings", "meta": {"file": rel, "name": title}})
    return docs[:limit]


def cbrn_documents() -> list[dict]:
    """The repo's own CBRN-topic and hard-negative documents (pipeline/demo_texts.py)."""
    from pipeline.demo_texts import demo_documents
    return demo_documents()


# ---------------------------------------------------------------- near-duplicate edits

HEADERS = ["Home | Docs | Blog | Contact\nSkip to main content\n\n",
           "Posted by admin in Reference. Last updated recently.\n\n",
           "Advertisement\n\nThis page is part of the community documentation mirror.\n\n"]
FOOTERS = ["\n\nShare this: Twitter Facebook Email. Related posts below.",
           "\n\nCopyright the authors. All rights reserved. Terms of use. Privacy policy.",
           "\n\nWas this page helpful? Yes No. Report an issue with this page."]


def _near_copy(text: str, rng: random.Random) -> tuple[str, list[str]]:
    ops = rng.sample(["header", "footer", "whitespace", "word_edits", "sentence_swap", "case"], rng.randint(1, 3))
    for op in ops:
        if op == "header":
            text = rng.choice(HEADERS) + text
        elif op == "footer":
            text = text + rng.choice(FOOTERS)
        elif op == "whitespace":
            text = re.sub(r" ", lambda m: "  " if rng.random() < 0.05 else " ", text) + "  \n"
        elif op == "word_edits":
            words = text.split(" ")
            for _ in range(max(1, len(words) // 50)):
                i = rng.randrange(len(words))
                w = words[i]
                kind = rng.random()
                if kind < 0.4 and len(words) > 5:
                    words.pop(i)
                elif kind < 0.7:
                    words.insert(i, rng.choice(["really", "also", "just", "quite", "indeed"]))
                elif len(w) > 3:
                    j = rng.randrange(len(w) - 1)
                    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
            text = " ".join(words)
        elif op == "sentence_swap":
            sents = re.split(r"(?<=[.!?]) ", text)
            if len(sents) > 2:
                i = rng.randrange(len(sents) - 1)
                sents[i], sents[i + 1] = sents[i + 1], sents[i]
            text = " ".join(sents)
        elif op == "case":
            lines = text.split("\n", 1)
            text = lines[0].upper() + ("\n" + lines[1] if len(lines) > 1 else "")
    return text, ops


# ---------------------------------------------------------------- writing

def build(out_dir: str | os.PathLike, cfg: DemoCorpusConfig, max_text_bytes: int = 4_000_000) -> Path:
    """Write the demo corpus (deterministic) and return its data directory `out_dir/data`.

    `out_dir/ground_truth.json` says which records are injected duplicates, bad or CBRN-topic.
    """
    top = Path(out_dir)
    out = top / "data"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    base = stdlib_documents(cfg.docs)
    if len(base) < cfg.docs:
        raise RuntimeError(f"only {len(base)} stdlib documents found, demo.docs={cfg.docs}")
    for i, d in enumerate(base):
        d["id"] = f"demo-{i:06d}"
    extra = cbrn_documents() if cfg.include_cbrn else []
    for i, d in enumerate(extra):
        d["id"] = d.get("id") or f"demo-cbrn-{i:04d}"
    records = base + extra
    truth: dict = {"exact": {}, "near": {}, "cbrn": {d["id"]: d.get("meta", {}).get("label") for d in extra},
                   "bad": {}}
    n_exact = int(len(base) * cfg.exact_dupe_rate)
    n_near = int(len(base) * cfg.near_dupe_rate)
    picks = rng.sample(range(len(base)), n_exact + n_near)
    dupes = []
    for k, i in enumerate(picks[:n_exact]):
        d = dict(base[i], id=f"demo-x{k:05d}")
        dupes.append(d)
        truth["exact"][d["id"]] = base[i]["id"]
    for k, i in enumerate(picks[n_exact:]):
        text, ops = _near_copy(base[i]["text"], rng)
        d = dict(base[i], id=f"demo-n{k:05d}", text=text)
        dupes.append(d)
        truth["near"][d["id"]] = {"original": base[i]["id"], "ops": ops}
    records = records + dupes
    rng.shuffle(records)

    # one slice goes to a .jsonl.gz, one to a .parquet, the rest to .jsonl.zst parts
    n = len(records)
    gz_part, pq_part = records[: n // 10], records[n // 10: n // 5]
    rest = records[n // 5:]
    for f in range(cfg.files):
        with ZstdLineWriter(out / f"part-{f:04d}.jsonl.zst") as w:
            for d in rest[f::cfg.files]:
                w.write_line(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
    atomic_write_bytes(out / "extra.jsonl.gz",
                       gzip_bytes(b"".join(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) + b"\n" for d in gz_part)))
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"id": [d["id"] for d in pq_part], "text": [d["text"] for d in pq_part],
                      "source": [d["source"] for d in pq_part]})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    atomic_write_bytes(out / "extra.parquet", buf.getvalue())
    if cfg.bad_records:
        truth["bad"] = _write_bad(out / "bad.jsonl", max_text_bytes)
    atomic_write_json(top / "ground_truth.json", truth)
    atomic_write_json(top / "COMPLETE.json", {"records": n, "config": vars(cfg)})
    return out


def _write_bad(path: Path, max_text_bytes: int) -> dict:
    """One record of every kind ingest must quarantine (line -> expected reason), plus good ones."""
    from common import reasons as R
    lines: list[tuple[bytes, str]] = [
        (b'{"id": "bad-ok-1", "text": "A good record before the bad ones."}', ""),
        (b'{"id": "bad-json", "text": "unterminated', R.INVALID_JSON),
        (b'{"id": "bad-utf8", "text": "caf\xe9 au lait"}', R.INVALID_UTF8),
        (b'["not", "an", "object"]', R.NOT_AN_OBJECT),
        (b'{"id": "bad-missing"}', R.MISSING_TEXT),
        (b'{"id": "bad-type", "text": 42}', R.TEXT_NOT_STRING),
        (b'{"id": "bad-empty", "text": ""}', R.EMPTY_TEXT),
        (b'{"id": "bad-space", "text": "  \\n\\t "}', R.EMPTY_TEXT),
        (orjson.dumps({"id": "bad-large", "text": "x" * (max_text_bytes + 1)}), R.TEXT_TOO_LARGE),
        (b'{"id": ["bad"], "text": "an id that is a list"}', R.BAD_ID),
        (b'{"id": "bad-ok-1", "text": "A second record reusing an id."}', R.DUPLICATE_ID),
        (b'', R.INVALID_JSON),
        (b'{"text": "A good record without an id gets one from its file and line."}', ""),
    ]
    atomic_write_bytes(path, b"\n".join(l for l, _ in lines) + b"\n")
    return {str(i + 1): r for i, (_, r) in enumerate(lines)}


def ensure_demo_corpus(run) -> Path:
    """Build the demo corpus inside the run directory once; later calls reuse it."""
    out = run.path("input", "demo")
    refuse_escaping_links(run.run_dir, "input", "demo")
    if (out / "COMPLETE.json").is_file() and read_json(out / "COMPLETE.json").get("config") == vars(run.config.demo):
        return out / "data"
    print(f"[demo] building the demo corpus in {out}", flush=True)
    return build(out, run.config.demo, run.config.ingest.max_text_bytes)
