"""Which datasets there are and whether their files are in place, without torch: a launch
checks its data before it imports torch or opens a database (``data.py`` loads them)."""

from __future__ import annotations

import gzip
import math
import struct
from dataclasses import dataclass
from pathlib import Path


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


class DataError(ValueError):
    """A dataset is missing or unreadable; the message names the path and the files expected."""


def no_data_dir(name: str) -> DataError:
    return DataError(
        f"no --data-dir for {name}; give a directory holding "
        f"{', '.join(_IDX_FILES.values())} (optionally .gz), or --download"
    )


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
    """What :func:`load_dataset` would refuse, found cheaply: the files are there and their
    headers are IDX. For the launcher, which must fail fast but does not train."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    if data_dir is None and download:
        return  # fetched by the loader on the workers
    if DATASETS[name].files == "cifar":
        if data_dir is None:
            raise DataError(f"no --data-dir for {name}; give a directory holding the CIFAR "
                            "python version, or --download")
        from . import cifar  # torch: only for CIFAR

        try:
            cifar.find_dir(name, Path(data_dir))
        except cifar.CifarError as e:
            if not download:
                raise DataError(f"{e}; pass --download to fetch it") from None
        return
    if data_dir is None:
        raise no_data_dir(name)
    d = _find_idx_dir(name, Path(data_dir))  # type: ignore[arg-type]
    for stem in _IDX_FILES.values():
        path = _idx_path(d, stem)
        assert path is not None
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as f:
                zero, dtype_code, _ = struct.unpack(">HBB", f.read(4))
            if zero != 0 or dtype_code != 0x08:
                raise ValueError("bad magic number")
        except (OSError, EOFError, ValueError, struct.error, gzip.BadGzipFile) as e:
            raise DataError(f"corrupt IDX file {path}: {e}") from None
