"""Isolated virtualenvs for peer tools in benchmarks (datatrove, dolma, ...).

Peer tools must never become dependencies of the project, and some of them cannot
share a venv with each other (dolma downgrades numpy/tokenizers), so each peer gets
its own venv under ``bench/.venvs/<name>`` (gitignored).  The project's code talks to
a peer only by running a script with the venv's python as a subprocess:

    from bench.peers import PEER_REQUIREMENTS, ensure_venv
    py = ensure_venv("datatrove", PEER_REQUIREMENTS["datatrove"])
    subprocess.run([str(py), "bench/datatrove_minhash.py", ...], check=True)

or from a shell (prints the venv's python):

    python3 bench/peers.py datatrove            # uses PEER_REQUIREMENTS["datatrove"]
    python3 bench/peers.py NAME REQ [REQ ...]

Stdlib only.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VENVS_DIR = Path(__file__).resolve().parent / ".venvs"
MARKER = ".bench-requirements.json"
OUTPUT_TAIL_LINES = 40

# Pinned requirement lists of the peers the benchmarks know about.
PEER_REQUIREMENTS: dict[str, list[str]] = {
    # datatrove[processing] alone cannot run the MinHash pipeline on our corpus:
    #  - JsonlReader needs orjson, and .zst input needs zstandard (both only in the
    #    heavy `io` extra, which also pulls datasets + pyarrow);
    #  - MinhashDedupSignature's default language "en" maps to SpaCyTokenizer
    #    (spacy.blank("en"), no model download), and spacy is only in the `multilingual` extra.
    "datatrove": [
        "datatrove[processing]==0.10.1",
        "orjson==3.13.0",
        "zstandard==0.25.0",
        "spacy==3.8.18",
    ],
}


class PeerInstallError(RuntimeError):
    """Creating the venv or installing a peer's requirements failed."""


def _log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-OUTPUT_TAIL_LINES:])
        raise PeerInstallError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n--- output tail ---\n{tail}"
        )
    return proc.stdout


def _read_marker(marker: Path) -> dict | None:
    try:
        have = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return have if isinstance(have, dict) else None


def ensure_venv(
    name: str,
    requirements: list[str],
    *,
    venvs_dir: Path | str | None = None,
    base_python: str | None = None,
) -> Path:
    """Return the python executable of ``bench/.venvs/<name>``, creating the venv if needed.

    ``requirements`` are pip requirement strings, meant to be pinned
    (``"datatrove[processing]==0.10.1"``).  A marker file in the venv records the list
    after a successful install.  If the marker is there and lists the same
    requirements, nothing is done (cheap to call every time).  Otherwise the venv is
    (re)created from scratch with ``python -m venv --clear`` and the requirements are
    installed, so a benchmark venv never holds leftovers of an earlier list.  On
    failure no marker is written and ``PeerInstallError`` carries the tail of
    pip's (or venv's) output.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad venv name {name!r}")
    reqs = [str(r).strip() for r in requirements if str(r).strip()]
    venv = Path(venvs_dir if venvs_dir is not None else VENVS_DIR) / name
    py = _venv_python(venv)
    marker = venv / MARKER
    base = base_python or sys.executable

    have = _read_marker(marker) if py.exists() else None
    if have is not None and have.get("requirements") == reqs:
        _log(f"venv {venv} up to date ({', '.join(reqs) or 'no requirements'})")
        return py
    if have is not None:
        _log(f"venv {venv}: requirements changed {have.get('requirements')} -> {reqs}; recreating it")
    else:
        _log(f"creating venv {venv} with {base}")
    if marker.exists():
        marker.unlink()  # a half-finished rebuild must not look finished
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([base, "-m", "venv", "--clear", str(venv)], "python -m venv")
    if reqs:
        _log(f"pip install into {venv}: {' '.join(reqs)}")
        _run(
            [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *reqs],
            f"pip install {' '.join(reqs)}",
        )
    freeze = _run([str(py), "-m", "pip", "freeze", "--disable-pip-version-check"], "pip freeze")
    marker.write_text(
        json.dumps({"requirements": reqs, "base_python": base, "freeze": freeze.splitlines()}, indent=1) + "\n"
    )
    _log(f"venv {venv} ready")
    return py


def installed_versions(python: Path | str) -> list[str]:
    """`pip freeze` lines recorded when the venv of ``python`` was built ([] if unknown)."""
    have = _read_marker(Path(python).parent.parent / MARKER)
    return list(have.get("freeze", [])) if have else []


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    name, reqs = argv[0], argv[1:]
    if not reqs:
        if name not in PEER_REQUIREMENTS:
            print(f"no requirement list known for {name!r}; give them on the command line", file=sys.stderr)
            return 2
        reqs = PEER_REQUIREMENTS[name]
    try:
        print(ensure_venv(name, reqs))
    except PeerInstallError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
