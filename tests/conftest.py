"""Shared fixtures. Keep this file small and general; per-area fixtures live in their modules."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _has_idx_files(directory: Path) -> bool:
    """True when ``directory`` (or its ``raw/``) holds all four MNIST IDX files, .gz or not."""
    return any(
        all((d / stem).is_file() or (d / f"{stem}.gz").is_file() for stem in _IDX_STEMS)
        for d in (directory, directory / "raw")
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST directory: $HWSEARCH_MNIST_DIR, else ``../shared/data/MNIST`` beside the
    repository (which holds ``raw/*.gz``). Skips, saying where it looked, when it is missing."""
    override = os.environ.get("HWSEARCH_MNIST_DIR")
    path = Path(override) if override else ROOT / ".." / "shared" / "data" / "MNIST"
    path = path.resolve()
    if not _has_idx_files(path):
        source = "$HWSEARCH_MNIST_DIR" if override else "the default location"
        pytest.skip(f"real MNIST not found at {path} ({source}); expected {', '.join(_IDX_STEMS)} "
                    "(optionally .gz) there or in its raw/; set HWSEARCH_MNIST_DIR")
    return path


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module, restored afterwards. Small nets gain nothing from
    more, and on a small shared CPU box spinning OpenMP threads make them several times slower.
    Use with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch  # here, not at the top: modules that never use torch should not pay for it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
