"""The import layers (docs/architecture.md): common imports nothing above it, model nothing of the
pipeline/filters/trainer/slurm, slurm nothing of the pipeline or trainer; and no two modules import each
other in a loop. Every import counts, also those inside functions and under TYPE_CHECKING."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("common", "model", "pipeline", "filters", "pretrain", "slurm")
FORBIDDEN = {  # package -> packages it must never import
    "common": {"model", "pipeline", "filters", "pretrain", "slurm"},
    "model": {"pipeline", "filters", "pretrain", "slurm"},
    "slurm": {"pipeline", "filters", "pretrain", "model"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> repo modules it imports (resolved to the longest existing module name)."""
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    out: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    targets.add(name)
        out[mod] = targets
    return out


def test_layers_point_one_way():
    bad = [f"{mod} imports {t}" for mod, targets in imports().items() for t in targets
           if t.split(".")[0] in FORBIDDEN.get(mod.split(".")[0], ())]
    assert not bad, bad


def test_no_import_cycles():
    graph = imports()
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles
