"""The benchmark scripts start as `make bench` runs them: `python bench/<name>.py` puts bench/ first on
sys.path, so a script named like a stdlib module (tokenize.py was) shadows it for every benchmark and
breaks imports deep inside other packages (orjson -> ... -> tokenize crashed bench/dedupe.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHES = ["dedupe", "cbrn", "tokenization", "model", "train", "run_all"]


def test_no_bench_module_shadows_the_standard_library():
    names = [p.stem for p in (REPO / "bench").glob("*.py")]
    assert "dedupe" in names
    assert [n for n in names if n in sys.stdlib_module_names] == []


def test_with_bench_first_on_the_path_the_standard_library_still_imports():
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import tokenize, inspect, orjson; "
            "assert tokenize.__file__.startswith(sys.base_prefix), tokenize.__file__")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("name", BENCHES)
def test_each_benchmark_starts_and_explains_itself(name):
    proc = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), "--help"], cwd=REPO,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-2000:]
