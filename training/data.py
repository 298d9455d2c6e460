"""Datasets as tensors resident on the training device.

MNIST-sized data fits in device memory, so batches are gathered by index on the device: no
DataLoader, no per-step host work. Images are scaled to [0, 1]; shape (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import cifar
from .datasets import (
    _IDX_FILES,
    DATASETS,
    CifarError,
    DataError,
    _find_idx_dir,
    _idx_path,
    no_data_dir,
)
from .validate import DEFAULT_CACHE, check_idx_arrays, read_idx

__all__ = ["DEFAULT_CACHE", "Dataset", "load_dataset", "read_idx"]



@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor  # (N, C, H, W) float in [0, 1]
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool = False  # random translations and mirroring of training batches (CIFAR)

    @property
    def in_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> Dataset:
        return Dataset(
            self.name,
            self.x_train.to(device, dtype),
            self.y_train.to(device),
            self.x_test.to(device, dtype),
            self.y_test.to(device),
            self.num_classes,
            self.augment,
        )

    def limit_train(self, n: int | None) -> Dataset:
        """The first ``n`` training examples (a fixed subset, so every trial sees the same data)."""
        if n is None or n >= len(self.y_train):
            return self
        return Dataset(
            self.name,
            self.x_train[:n],
            self.y_train[:n],
            self.x_test,
            self.y_test,
            self.num_classes,
            self.augment,
        )


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load ``name`` from ``data_dir``; with no directory, torchvision downloads into a cache."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    if DATASETS[name].files == "cifar":
        return _load_cifar(name, data_dir, download)
    if data_dir is None:
        data_dir = _download_idx(name) if download else None
        if data_dir is None:
            raise no_data_dir(name)
    return _load_idx_dataset(name, Path(data_dir))


# The last IDX dataset this process loaded, by its files' paths, sizes and modification times:
# a search worker trains pack after pack of the same data, and each would otherwise decode and
# scale it again (about a second of a core per pack here).
_loaded: dict[tuple[object, ...], Dataset] = {}


def _load_idx_dataset(name: str, root: Path) -> Dataset:
    d = _find_idx_dir(name, root)
    paths = {k: _idx_path(d, stem) for k, stem in _IDX_FILES.items()}
    key = (name, *((str(p), *_signature(p)) for p in paths.values()))  # type: ignore[arg-type]
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = _decode_idx_dataset(name, d, paths)  # type: ignore[arg-type]
    return _loaded[key]


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _decode_idx_dataset(name: str, d: Path, paths: dict[str, Path]) -> Dataset:
    arrays = {k: read_idx(path) for k, path in paths.items()}
    check_idx_arrays(name, d, arrays)  # cheap; the whole files were checked by check_dataset

    def images(a: np.ndarray) -> torch.Tensor:
        scaled = a.astype(np.float32)
        scaled /= 255.0  # in place: one float copy of the data, not two
        return torch.from_numpy(scaled).unsqueeze(1)

    def labels(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.int64))

    return Dataset(
        name,
        images(arrays["train_x"]),
        labels(arrays["train_y"]),
        images(arrays["test_x"]),
        labels(arrays["test_y"]),
        DATASETS[name].classes,
    )


def _download_idx(name: str) -> Path:
    from torchvision import datasets  # imported lazily: only downloads need it

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    root = DEFAULT_CACHE
    for train in (True, False):
        cls(str(root), train=train, download=True)
    return root


def _load_cifar(name: str, data_dir: str | Path | None, download: bool) -> Dataset:
    """The CIFAR python version from ``data_dir`` (read by :mod:`.cifar`'s safe reader,
    normalised as the authors did); torchvision only downloads, and only with ``download``."""
    root = Path(data_dir) if data_dir is not None else DEFAULT_CACHE
    if download:
        from torchvision import datasets  # imported lazily: only downloads need it

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        for train in (True, False):
            cls(str(root), train=train, download=True)
    elif data_dir is None:
        raise no_data_dir(name)
    try:
        x_train, y_train, x_test, y_test, classes = cifar.read_cifar(name, root)
    except CifarError as e:
        raise DataError(f"{e}; pass `download` to fetch it") from None
    train, test = cifar.normalise(x_train, x_test)
    return Dataset(name, train, y_train, test, y_test, classes, augment=True)
