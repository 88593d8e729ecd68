"""Labeled text written for this repo (encyclopedia / policy level only), used with the shared train split."""
from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).parent
EXTRA_FILES = ("extra_pos.txt", "extra_neg.txt", "extra_pos2.txt", "extra_neg2.txt", "extra_registers.txt",
               "extra_chemical.txt", "extra_radiological.txt", "extra_biological.txt", "extra_nuclear.txt",
               "extra_glossary.txt")


def read_extra(paths=None) -> list[dict]:
    """Rows {"text", "label", "note"} from `label|note|text` lines; '#' lines are comments."""
    rows = []
    for name in paths or EXTRA_FILES:
        p = Path(name) if Path(name).is_absolute() else DATA_DIR / name
        for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("|", 2)
            if len(parts) != 3 or parts[0] not in ("0", "1") or not parts[2].strip():
                raise ValueError(f"{p}:{lineno}: expected 'label|note|text' with label 0 or 1")
            rows.append({"text": parts[2].strip(), "label": int(parts[0]), "note": "repo-written; " + parts[1]})
    return rows
