"""Which datasets there are, what they are, and whether their files are in place, without
torch: a launch checks its data before it imports torch or opens a database (``data.py`` and
``cifar.py`` load them)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from hwsearch.options import did_you_mean


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, as its files hold it: every other place reads these numbers here."""

    train: int  # training examples
    test: int  # test examples
    shape: tuple[int, int, int]  # (C, H, W) of an image
    classes: int
    files: str  # how it is stored: "idx" (MNIST's format) or "cifar" (the CIFAR python version)

    @property
    def features(self) -> int:
        """Inputs of a fully connected net: C·H·W."""
        return math.prod(self.shape)


DATASETS = {
    "mnist": DatasetInfo(60_000, 10_000, (1, 28, 28), 10, "idx"),
    "fashion-mnist": DatasetInfo(60_000, 10_000, (1, 28, 28), 10, "idx"),
    "cifar10": DatasetInfo(50_000, 10_000, (3, 32, 32), 10, "cifar"),
    "cifar100": DatasetInfo(50_000, 10_000, (3, 32, 32), 100, "cifar"),
}
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_RAW_SUBDIR = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_FILES = {  # (training batches, test batches, meta file) of the CIFAR python version
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"),
    "cifar100": (["train"], ["test"], "meta"),
}


class DataError(ValueError):
    """A dataset is missing or unreadable; the message names the path and the files expected."""


class CifarError(ValueError):
    """A CIFAR directory is missing, incomplete or holds something other than CIFAR."""


def find_cifar_dir(name: str, root: Path) -> Path:
    """``root`` itself or its standard subfolder, whichever holds every file."""
    train, test, meta = CIFAR_FILES[name]
    for d in (root, root / _CIFAR_FOLDERS[name]):
        if all((d / f).is_file() for f in (*train, *test, meta)):
            return d
    raise CifarError(f"no {name} in {root} (nor in {root / _CIFAR_FOLDERS[name]}); expected "
                     f"{', '.join((*train, *test, meta))} (the CIFAR python version)")


def no_data_dir(name: str) -> DataError:
    """The error of a dataset asked for with neither a directory nor a download."""
    holding = ("the CIFAR python version" if DATASETS[name].files == "cifar" else
               f"{', '.join(_IDX_FILES.values())} (optionally .gz)")
    return DataError(f"no `data_dir` for {name}; give a directory holding {holding}, or "
                     "`download`")


def _find_idx_dir(name: str, root: Path) -> Path:
    if not root.is_dir():
        raise DataError(
            f"data directory {root} does not exist; expected the {name} IDX files "
            f"{', '.join(_IDX_FILES.values())} (optionally .gz)"
        )
    candidates = [root, root / "raw", root / _RAW_SUBDIR[name] / "raw"]
    for d in candidates:
        if all(_idx_path(d, f) is not None for f in _IDX_FILES.values()):
            return d
    raise DataError(
        f"no {name} IDX files in {root} (looked in {', '.join(str(c) for c in candidates)}); "
        f"expected {', '.join(_IDX_FILES.values())} (optionally .gz)"
    )


def _idx_path(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def check_dataset(name: str, data_dir: str | Path | None, download: bool = False) -> None:
    """What :func:`load_dataset` would refuse, before anything starts: the files are there and
    whole (``validate.py``: every byte read once, then a stamp in the cache skips it). For
    the launcher, the report and ``train``, which must fail fast and in one line."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}{did_you_mean(name, DATASETS)}; allowed: "
                        f"{', '.join(DATASETS)}")
    if data_dir is None and download:
        return  # fetched by the loader on the workers
    if data_dir is None:
        raise no_data_dir(name)
    root = Path(data_dir)
    if root.exists() and not root.is_dir():
        raise DataError(f"data directory {root} is a file; expected a directory holding the "
                        f"{name} files")
    if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"cannot read data directory {root}: permission denied")
    if DATASETS[name].files == "cifar":
        try:
            _check_cifar(name, root)
        except CifarError as e:
            if not download:
                raise DataError(f"{e}; pass `download` to fetch it") from None
        return
    _check_idx(name, _find_idx_dir(name, root))


def _check_idx(name: str, d: Path) -> None:
    from .validate import check_idx_arrays, mark_checked, read_idx, stamp

    paths = {k: _idx_path(d, stem) for k, stem in _IDX_FILES.items()}
    done = stamp(name, list(paths.values()))  # type: ignore[arg-type]
    if done is not None and done.exists():
        return
    arrays = {k: read_idx(p) for k, p in paths.items()}  # type: ignore[arg-type]
    check_idx_arrays(name, d, arrays)
    mark_checked(done)


def _check_cifar(name: str, root: Path) -> None:
    from .validate import mark_checked, read_batches, safe_load, stamp

    d = find_cifar_dir(name, root)
    train, test, meta = CIFAR_FILES[name]
    done = stamp(name, [d / f for f in (*train, *test, meta)])
    if done is not None and done.exists():
        return
    read_batches(name, d, train)
    read_batches(name, d, test)
    safe_load(d / meta)
    mark_checked(done)
