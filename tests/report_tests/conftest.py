"""Fixtures: real MNIST and one small real search in a temporary SQLite storage (built once).

This folder goes on ``sys.path`` for its helper modules (``report_fakes``,
``report_search_builder``), whatever pytest's import mode.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import pytest  # noqa: E402
import torch  # noqa: E402
from report_search_builder import DIVERGING, Config, Search, run_study  # noqa: E402

from hwsearch.storage import open_storage  # noqa: E402
from hwsearch.training import DataError, Dataset, load_dataset  # noqa: E402

MNIST_DIR = Path(os.environ.get("HWSEARCH_MNIST_DIR", ROOT.parent / "shared" / "data" / "MNIST"))
EPOCHS, LIMIT_TRAIN, SEED = 2, 1000, 4

# Tiny nets gain nothing from threads, and on a busy 2-core machine two spinning threads make
# each forward pass ~100x slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    try:
        return load_dataset("mnist", MNIST_DIR)
    except DataError as e:
        pytest.skip(f"real MNIST unavailable (set HWSEARCH_MNIST_DIR): {e}")


@pytest.fixture(scope="session")
def search(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Search]:
    """Plain and highway nets at depths 4 and 10, three sampled trials each, trained for real;
    the plain studies first run one parameter set that diverges."""
    url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'search.db'}"
    store = open_storage(url)
    names = []
    for model in ("plain", "highway"):
        for depth in (4, 10):
            enqueue = (DIVERGING,) if model == "plain" else ()
            names.append(run_study(store, mnist, Config(model, depth, 3, enqueue),
                                   epochs=EPOCHS, limit_train=LIMIT_TRAIN, seed=SEED,
                                   prefix="t-"))
    store.close()
    yield Search(url, str(MNIST_DIR), names)
