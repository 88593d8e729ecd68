"""The CBRN lexicon: load the versioned JSON file (filters/lexicon/cbrn_lexicon.json by default)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.io import read_json, sha256_file

DEFAULT_LEXICON = Path(__file__).with_name("cbrn_lexicon.json")
CATEGORIES = ("chemical", "biological", "radiological", "nuclear")


class LexiconError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    index: int
    term: str
    category: str
    lists: tuple
    aliases: tuple
    context_aliases: tuple
    cas: str | None
    tier1: bool
    schedule1: bool
    dual_use_common: bool

    @property
    def high_concern(self) -> bool:
        """FSAP Tier 1 or CWC Schedule 1: what the blocklist-only density rule counts."""
        return self.tier1 or self.schedule1

    @property
    def list_ids(self) -> list[str]:
        return sorted({m["list"] for m in self.lists})


@dataclass
class Lexicon:
    path: str
    sha256: str
    version: str
    entries: list[Entry]
    cues: dict[str, list[str]]
    stop_phrases: list[str] = field(default_factory=list)


def load_lexicon(path: str | Path | None = None) -> Lexicon:
    p = Path(path) if path else DEFAULT_LEXICON
    if not p.is_file():
        raise LexiconError(f"lexicon file not found: {p}")
    try:
        data = read_json(p)
    except Exception as e:  # orjson.JSONDecodeError and OSError alike
        raise LexiconError(f"{p}: cannot read lexicon: {e}") from None
    for key in ("version", "entries", "cues"):
        if key not in data:
            raise LexiconError(f"{p}: missing field {key!r}")
    entries = []
    for i, e in enumerate(data["entries"]):
        for key in ("term", "category", "lists", "aliases"):
            if key not in e:
                raise LexiconError(f"{p}: entries[{i}] missing field {key!r}")
        if e["category"] not in CATEGORIES:
            raise LexiconError(f"{p}: entries[{i}].category: unknown {e['category']!r}")
        entries.append(Entry(i, e["term"], e["category"], tuple(e["lists"]), tuple(e["aliases"]),
                             tuple(e.get("context_aliases", ())), e.get("cas"), bool(e.get("tier1")),
                             bool(e.get("schedule1")), bool(e.get("dual_use_common"))))
    return Lexicon(str(p), sha256_file(p), str(data["version"]), entries, data["cues"], list(data.get("stop_phrases", [])))
