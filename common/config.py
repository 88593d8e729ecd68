"""One config object per run: typed sections, presets, overrides, strict keys.

A run config is a TOML or JSON file with one table per section (`[run]`, `[ingest]`, `[dedupe]`, ...).
Each section is a kw_only dataclass owned by the package that uses it, which registers it here when it
is imported (`register_section`, "module:Class", imported on first use), so this module knows nothing of
the packages above it. Unknown keys are errors that name the file, the key and the closest known key; a
program that reads only some sections (the trainer) loads with `foreign="keep"`, and sections no package
of its registered are left to their owners to check.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PRESET_DIR = REPO_ROOT / "configs"

# section name -> "module:Class", registered by the package that owns the section; a section whose
# module fails to import is reported, never ignored.
SECTIONS: dict[str, str] = {"run": "common.config:RunSection"}


def register_section(name: str, spec: str) -> None:
    """Called by the package that owns section [name] when it is imported."""
    SECTIONS[name] = spec


class ConfigError(ValueError):
    pass


@dataclass(kw_only=True)
class RunSection:
    run_dir: str = "runs/demo"
    seed: int = 1234
    workers: int = 2
    executor: str = "local"  # pipeline/executor: local | slurm (checked where it is chosen)
    stages: list[str] = field(default_factory=list)  # empty = every registered stage (pipeline/stages.py)
    preset: str = ""

    def validate(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"run.workers: must be >= 1, got {self.workers}")


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def section_class(name: str):
    spec = SECTIONS.get(name)
    if spec is None:
        raise ConfigError(f"unknown config section [{name}]{_suggest(name, SECTIONS)}")
    mod, cls = spec.split(":")
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and (e.name == mod or mod.startswith(e.name + ".")):
            return None  # the package is not part of this checkout: load() reports a section that needs it
        raise ConfigError(f"config section [{name}]: {mod} failed to import: {e}") from e
    if not hasattr(module, cls):
        raise ConfigError(f"config section [{name}]: {mod} has no {cls}")
    return getattr(module, cls)


def available_sections() -> dict[str, type]:
    out = {}
    for name in SECTIONS:
        cls = section_class(name)
        if cls is not None:
            out[name] = cls
    return out


# ---------------------------------------------------------------- typed construction

def _coerce(value: Any, tp, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        return build(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def build(cls, data: dict, where: str, validate: bool = True):
    """Build dataclass `cls` from `data`, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, names)}")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    obj = cls(**kwargs)
    if validate and hasattr(obj, "validate"):
        obj.validate()
    return obj


def to_dict(obj) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------- files, presets, overrides

def read_config_file(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: cannot parse: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a table")
    return data


def preset_path(name: str) -> Path:
    p = PRESET_DIR / f"{name}.toml"
    if not p.is_file():
        known = sorted(x.stem for x in PRESET_DIR.glob("*.toml"))
        raise ConfigError(f"unknown preset {name!r}{_suggest(name, known)}; known: {', '.join(known)}")
    return p


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> dict:
    """`section.key=value` -> nested dict; the value is read as TOML, else taken as a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    parts = key.strip().split(".")
    if len(parts) < 2:
        raise ConfigError(f"override {text!r}: key must name a section, e.g. dedupe.bands=20")
    out: dict = value
    for p in reversed(parts):
        out = {p: out}
    return out


class RunConfig:
    """The resolved config of one run: one typed object per section."""

    def __init__(self, sections: dict[str, Any], sources: list[str]):
        self._sections = sections
        self.sources = sources

    def __getattr__(self, name):
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def has(self, name: str) -> bool:
        return name in self._sections

    def to_dict(self) -> dict:
        return {name: to_dict(obj) for name, obj in sorted(self._sections.items())}


def load(config_file: str | os.PathLike | None = None, preset: str | None = None,
         overrides: list[str] | None = None, data: dict | None = None, foreign: str = "error") -> RunConfig:
    """Embedded defaults <- preset <- config file <- `data` <- overrides; every layer checked. A section no
    imported package registered is an error (`foreign="error"`), or is left unchecked and out of the
    result (`"keep"`: for programs that read only their own sections)."""
    layers: list[tuple[str, dict]] = []
    if preset:
        layers.append((str(preset_path(preset)), read_config_file(preset_path(preset))))
    if config_file:
        file_data = read_config_file(config_file)
        file_preset = file_data.get("run", {}).get("preset") if isinstance(file_data.get("run"), dict) else None
        if file_preset and not preset:
            layers.insert(0, (str(preset_path(file_preset)), read_config_file(preset_path(file_preset))))
        layers.append((str(config_file), file_data))
    if data:
        layers.append(("<arguments>", data))
    for ov in overrides or []:
        layers.append((f"override {ov!r}", parse_override(ov)))

    merged: dict = {}
    for src, layer in layers:
        for name, value in layer.items():
            if name not in SECTIONS:
                if foreign == "keep":
                    continue
                raise ConfigError(f"{src}: unknown section [{name}]{_suggest(name, SECTIONS)}")
            if section_class(name) is None:
                raise ConfigError(f"{src}: section [{name}] is not available in this version")
            if not isinstance(value, dict):
                raise ConfigError(f"{src}: [{name}] must be a table")
            # keys and types are checked per layer so the error names the file that holds them
            build(section_class(name), value, f"{src}: [{name}]", validate=False)
        merged = merge(merged, layer)
    if preset:
        merged = merge(merged, {"run": {"preset": preset}})

    sections = {}
    for name, cls in available_sections().items():
        sections[name] = build(cls, merged.get(name, {}), f"[{name}]")
    return RunConfig(sections, [s for s, _ in layers])
