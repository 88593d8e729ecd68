from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "cbrn_labeled" / "dev.jsonl").is_file(),
                                  reason="../shared/data is not present")


@pytest.fixture(scope="session")
def lexicon():
    from filters.lexicon import load_lexicon
    return load_lexicon()


@pytest.fixture(scope="session")
def matcher(lexicon):
    from filters.match import Matcher
    return Matcher(lexicon)


@pytest.fixture(scope="session")
def cbrn_filter():
    from filters.decide import CbrnFilter
    return CbrnFilter.from_config()
