"""Source scan for unsafe deserialisation: pickle (and its relatives), torch.load without
weights_only=True, numpy.load with allow_pickle=True. AST-based, with import aliases resolved."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import REPO

PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "joblib"}


def package_dirs() -> list[Path]:
    """The installed packages, as pyproject.toml lists them ("common*" -> common/)."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = [p.rstrip("*") for p in cfg["tool"]["setuptools"]["packages"]["find"]["include"]]
    return [REPO / n for n in names if (REPO / n).is_dir()]


def package_files() -> list[Path]:
    return sorted(p for d in package_dirs() for p in d.rglob("*.py"))


def _root(module: str) -> str:
    return module.split(".")[0]


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str, name: str = "<src>") -> list[str]:
    """Every unsafe deserialisation in `source`, as 'name:line: what'."""
    tree = ast.parse(source, name)
    torch_mods, torch_loads, numpy_mods, numpy_loads = {"torch"}, set(), {"numpy", "np"}, set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _root(a.name) in PICKLE_MODULES:
                    found.append(f"{name}:{node.lineno}: import {a.name}")
                if a.name == "torch":
                    torch_mods.add(a.asname or "torch")
                if a.name == "numpy":
                    numpy_mods.add(a.asname or "numpy")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if _root(node.module) in PICKLE_MODULES:
                found.append(f"{name}:{node.lineno}: from {node.module} import ...")
            for a in node.names:
                if node.module in ("torch", "torch.serialization") and a.name == "load":
                    torch_loads.add(a.asname or "load")
                if node.module == "numpy" and a.name == "load":
                    numpy_loads.add(a.asname or "load")
                if a.name in ("read_pickle", "loads") and node.module == "pandas":
                    found.append(f"{name}:{node.lineno}: from pandas import {a.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f, kw = node.func, {k.arg: k.value for k in node.keywords}
        called = ast.unparse(f)
        is_torch_load = (isinstance(f, ast.Attribute) and f.attr == "load" and ast.unparse(f.value) in
                         {*torch_mods, *(f"{m}.serialization" for m in torch_mods)}) or \
                        (isinstance(f, ast.Name) and f.id in torch_loads)
        is_numpy_load = (isinstance(f, ast.Attribute) and f.attr == "load" and ast.unparse(f.value) in numpy_mods) or \
                        (isinstance(f, ast.Name) and f.id in numpy_loads)
        if is_torch_load and not _is_true(kw.get("weights_only")):
            found.append(f"{name}:{node.lineno}: {called}(...) without weights_only=True")
        if is_numpy_load and "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant)
                                                         and kw["allow_pickle"].value is False):
            found.append(f"{name}:{node.lineno}: {called}(..., allow_pickle={ast.unparse(kw['allow_pickle'])})")
        if isinstance(f, ast.Attribute) and f.attr == "read_pickle":
            found.append(f"{name}:{node.lineno}: {called}(...)")
        if called in ("__import__", "importlib.import_module") and node.args and \
                isinstance(node.args[0], ast.Constant) and _root(str(node.args[0].value)) in PICKLE_MODULES:
            found.append(f"{name}:{node.lineno}: {called}({node.args[0].value!r})")
    return found
