"""Refuse paths that escape the run directory (via `..`, absolute parts or symlinks)."""
from __future__ import annotations

import os
from pathlib import Path


class PathEscapeError(ValueError):
    pass


def inside(root: str | os.PathLike, *parts: str | os.PathLike) -> Path:
    """Join `parts` under `root` and refuse the result if it resolves outside `root`.

    Symlinks are resolved, so a link inside the run directory pointing elsewhere is refused too.
    """
    root_resolved = Path(root).resolve()
    candidate = Path(root, *parts)
    resolved = candidate.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathEscapeError(f"path {str(Path(*parts))!r} escapes the run directory {str(root)!r}")
    return candidate


def check_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Like `inside`, for a path that may already be absolute."""
    p = Path(path)
    if not p.is_absolute():
        return inside(root, p)
    root_resolved = Path(root).resolve()
    resolved = p.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise PathEscapeError(f"path {str(p)!r} escapes the run directory {str(root)!r}")
    return p


def refuse_escaping_links(root: str | os.PathLike, *parts: str | os.PathLike) -> None:
    """Refuse to write into `root/parts...` when it, or anything under it, is a symlink leading
    outside `root`: writes follow links, so a linked `shards/` would send a stage's outputs (and
    its temp files) anywhere on the machine. Links that stay inside `root` are fine."""
    base = inside(root, *parts)
    if not base.is_dir():
        return
    stack = [base]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_symlink():
                    check_inside(root, e.path)
                elif e.is_dir():
                    stack.append(Path(e.path))
