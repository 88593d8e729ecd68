"""fastText topic classifier: training (deterministic: one thread, fixed seed), cross-validated threshold
calibration, quantisation, and chunked scoring with a per-process lazily loaded model.

Input text is the exact view of the normaliser (case folded, accents/homoglyphs folded, punctuation as
spaces), so the classifier sees the same folded words whatever the spelling tricks.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from filters.normalize import exact_view

LABEL_POS, LABEL_NEG = "__label__1", "__label__0"

# Chosen by 5-fold cross-validation on the training data (see `python -m filters.cbrn tune`), never on dev.
DEFAULT_PARAMS = {"epoch": 40, "lr": 0.5, "wordNgrams": 2, "dim": 50, "minn": 3, "maxn": 5, "bucket": 200000,
                  "minCount": 1, "loss": "softmax"}
SEED = 20240611


def prep(text: str, max_words: int | None = None) -> str:
    words = exact_view(text).split()
    if max_words is not None:
        words = words[:max_words]
    return " ".join(words)


def chunks(text: str, chunk_words: int, overlap_words: int) -> list[str]:
    """The prepared text cut into windows of `chunk_words` words that overlap by `overlap_words`."""
    words = exact_view(text).split()
    if len(words) <= chunk_words:
        return [" ".join(words)]
    step = max(1, chunk_words - overlap_words)
    out = []
    for start in range(0, len(words), step):
        out.append(" ".join(words[start:start + chunk_words]))
        if start + chunk_words >= len(words):
            break
    return out


def _fasttext():
    import fasttext  # imported lazily: a forked worker loads it in its own process
    return fasttext


def write_train_file(texts: list[str], labels: list[int], path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for t, y in zip(texts, labels):
            fh.write(f"{LABEL_POS if y else LABEL_NEG} {prep(t)}\n")


_TRAIN_SCRIPT = """
import json, sys
import fasttext
train_file, out, params, seed, quantize, cutoff = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1", int(sys.argv[6])
m = fasttext.train_supervised(input=train_file, thread=1, seed=seed, verbose=0, **params)
if quantize:
    m.quantize(input=train_file, qnorm=True, retrain=False, cutoff=cutoff, thread=1, verbose=0)
m.save_model(out)
"""


def train_to_file(texts: list[str], labels: list[int], out: str | os.PathLike, params: dict | None = None,
                  seed: int = SEED, quantize: bool = False, cutoff: int = 50000) -> None:
    """Train (and optionally quantise) in a FRESH Python process, one thread, fixed seed.

    The fastText library keeps state between trainings in one process: a second training there can
    differ from the first. A fresh process per training makes the bytes depend on the data alone.
    """
    p = dict(DEFAULT_PARAMS, **(params or {}))
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "train.txt")
        write_train_file(texts, labels, f)
        r = subprocess.run([sys.executable, "-c", _TRAIN_SCRIPT, f, str(out), json.dumps(p, sort_keys=True), str(seed),
                            "1" if quantize else "0", str(cutoff)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"fastText training failed: {r.stderr.strip()[-2000:]}")


def train_model(texts: list[str], labels: list[int], params: dict | None = None, seed: int = SEED,
                quantize: bool = False, cutoff: int = 50000):
    """Train in a fresh process (see train_to_file) and load the result here."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "model.ftz" if quantize else "model.bin")
        train_to_file(texts, labels, out, params, seed, quantize, cutoff)
        return _fasttext().load_model(out)


def model_scores(model, prepared: list[str]) -> np.ndarray:
    """P(label 1) for each prepared text."""
    if not prepared:
        return np.zeros(0)
    labels, probs = model.predict(prepared, k=2)
    out = np.empty(len(prepared))
    for i, (ls, ps) in enumerate(zip(labels, probs)):
        d = dict(zip(ls, ps))
        out[i] = float(d.get(LABEL_POS, 1.0 - d.get(LABEL_NEG, 1.0)))
    return np.clip(out, 0.0, 1.0)


def fold_of(text: str, k: int) -> int:
    """Deterministic fold assignment from the text itself (stable across runs and machines)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % k


def cross_val_scores(texts: list[str], labels: list[int], params: dict | None = None, k: int = 5,
                     seed: int = SEED, chunk_words: int = 150, overlap_words: int = 40,
                     windows: list[list[str]] | None = None) -> np.ndarray:
    """Out-of-fold max-chunk scores for every training document (the calibration set). `windows[i]`: extra
    passages of document i scored with its chunks (the term windows the decision scores), as the policy does."""
    folds = np.array([fold_of(t, k) for t in texts])
    out = np.zeros(len(texts))
    for f in range(k):
        tr = np.flatnonzero(folds != f)
        te = np.flatnonzero(folds == f)
        m = train_model([texts[i] for i in tr], [labels[i] for i in tr], params, seed)
        for i in te:
            cs = chunks(texts[i], chunk_words, overlap_words)
            for w in (windows[i] if windows is not None and i < len(windows) else ()):
                cs += chunks(w, chunk_words, overlap_words)
            out[i] = model_scores(m, cs).max()
    return out


def threshold_for_recall(scores: np.ndarray, labels: list[int], target_recall: float) -> float:
    """The largest threshold whose recall on the positives is still >= target (score >= t is positive)."""
    pos = np.sort(np.asarray(scores)[np.asarray(labels) == 1])
    if len(pos) == 0:
        raise ValueError("no positive examples to calibrate on")
    n_miss = int(np.floor((1.0 - target_recall) * len(pos) + 1e-9))
    return float(pos[n_miss])


@dataclass
class Classifier:
    """A model file, loaded on first use in each process (safe across fork)."""
    path: str
    chunk_words: int = 150
    overlap_words: int = 40
    _model: object = field(default=None, repr=False)
    _pid: int = field(default=-1, repr=False)

    def model(self):
        if self._model is None or self._pid != os.getpid():
            if not Path(self.path).is_file():
                raise FileNotFoundError(f"classifier model not found: {self.path}")
            self._model = _fasttext().load_model(str(self.path))
            self._pid = os.getpid()
        return self._model

    def chunk_scores(self, text: str) -> np.ndarray:
        return model_scores(self.model(), chunks(text, self.chunk_words, self.overlap_words))

    def chunk_scores_batch(self, texts: list[str]) -> list[np.ndarray]:
        all_chunks, owner = [], []
        for i, t in enumerate(texts):
            cs = chunks(t, self.chunk_words, self.overlap_words)
            all_chunks += cs
            owner += [i] * len(cs)
        scores = model_scores(self.model(), all_chunks)
        out = [[] for _ in texts]
        for i, s in zip(owner, scores):
            out[i].append(s)
        return [np.array(x) for x in out]
