"""No pickle, no torch.load without weights_only=True, no numpy.load(allow_pickle=True) anywhere in
the package: loading a checkpoint or array must never run code from the file."""
import pytest

from tests.security.scan import package_dirs, package_files, unsafe_loads


def test_the_scan_covers_every_package():
    names = {d.name for d in package_dirs()}
    assert {"common", "pipeline", "filters", "model", "slurm"} <= names
    assert len(package_files()) > 30


def test_no_unsafe_deserialisation_anywhere_in_the_package():
    found = [hit for p in package_files() for hit in unsafe_loads(p.read_text(), str(p))]
    assert found == []


UNSAFE = [
    "import pickle",
    "import pickle as p",
    "from pickle import loads",
    "import dill",
    "import joblib",
    "import torch\ntorch.load(path)",
    "import torch\ntorch.load(path, weights_only=False)",
    "import torch\ntorch.load(path, map_location='cpu')",
    "import torch\ntorch.load(path, **kw)",
    "import torch as T\nT.load(path)",
    "from torch import load\nload(path)",
    "from torch import load as tl\ntl(path, weights_only=flag)",
    "import torch\ntorch.serialization.load(path)",
    "import numpy as np\nnp.load(path, allow_pickle=True)",
    "import numpy\nnumpy.load(path, allow_pickle=flag)",
    "import pandas as pd\npd.read_pickle(path)",
    "__import__('pickle')",
    "import importlib\nimportlib.import_module('cloudpickle')",
]
SAFE = [
    "import torch\ntorch.load(path, weights_only=True)",
    "import torch\ntorch.load(path, map_location='cpu', weights_only=True)",
    "from torch import load\nload(path, weights_only=True)",
    "import numpy as np\nnp.load(path)",
    "import numpy as np\nnp.load(path, allow_pickle=False, mmap_mode='r')",
    "import json\njson.load(fh)",
    "from safetensors.torch import load_file\nload_file(path)",
    "import orjson\norjson.loads(b)",
]


@pytest.mark.parametrize("src", UNSAFE)
def test_the_scan_flags_each_unsafe_form(src):
    assert unsafe_loads(src), src


@pytest.mark.parametrize("src", SAFE)
def test_the_scan_passes_safe_forms(src):
    assert unsafe_loads(src) == [], src
