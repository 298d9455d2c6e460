"""One small real search in a temporary SQLite storage, trained once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hwsearch.storage import open_storage
from hwsearch.training.data import Dataset
from hwtest.search_builder import DIVERGING, Config, Search, run_study

EPOCHS, LIMIT_TRAIN, SEED = 2, 1000, 4


@pytest.fixture(scope="session")
def search(
    mnist: Dataset, mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Search]:
    """Plain and highway nets at depths 4 and 10, three sampled trials each, trained for real;
    the plain studies first run one parameter set that diverges."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets; spinning threads only contend on a small machine
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
    torch.set_num_threads(threads)
    yield Search(url, str(mnist_dir), names)
