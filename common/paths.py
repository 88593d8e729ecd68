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
