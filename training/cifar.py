"""CIFAR-10/100 from the standard "python version" directory, read safely, prepared as the
authors prepared it.

Files. ``cifar-10-batches-py/`` holds ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
``batches.meta``; ``cifar-100-python/`` holds ``train``, ``test`` and ``meta``. Each is a
pickled dict (``b"data"``: uint8 (N, 3072) rows of R, G, B planes; ``b"labels"`` or
``b"fine_labels"``). Unpickling can run arbitrary code, so the reader resolves only the few
numpy globals an array needs and refuses everything else: a tampered file is an error, never
code run. torchvision is used for downloads only (``--download``), never to read.

Preparation, from the definitions (``examples/highways/cifar*-19layers``): their data are
"gcn" (global contrast normalised) with a mean image subtracted (``mean.binaryproto``), and
training draws random 32×32 crops of images padded beforehand (``..._padded``,
``crop_size: 32``) and mirrors half of them (``mirror: 1``): the NeurIPS paper's "random
translations", plus flips. The amount of padding is not in the definitions; we pad 4 pixels
with zeros (after normalisation, so zero is the mean), the usual choice for CIFAR.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .datasets import DATASETS

PAD = 4  # pixels of zero padding for the random translations
GCN_EPS = 1e-8

_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_FILES = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"),
    "cifar100": (["train"], ["test"], "meta"),
}
_LABELS = {"cifar10": b"labels", "cifar100": b"fine_labels"}
_LABEL_NAMES = {"cifar10": b"label_names", "cifar100": b"fine_label_names"}  # in the meta file
# What an ndarray's pickle needs, under numpy 1.x and 2.x names, and the str → bytes codec a
# protocol-2 pickle written by Python 3 uses for raw bytes; nothing else is resolved.
_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class CifarError(ValueError):
    """A CIFAR directory is missing, incomplete or holds something other than CIFAR."""


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR "
                                     "batch")


def safe_load(path: Path) -> dict[bytes, Any]:
    """One CIFAR pickle, with only numpy arrays and builtins allowed."""
    try:
        with path.open("rb") as f:
            out = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise CifarError(f"{path}: not a CIFAR batch ({e})") from None
    if not isinstance(out, dict):
        raise CifarError(f"{path}: not a CIFAR batch (a {type(out).__name__}, not a dict)")
    return out


def find_dir(name: str, root: Path) -> Path:
    """``root`` itself or its standard subfolder, whichever holds every file."""
    train, test, meta = _FILES[name]
    for d in (root, root / _FOLDERS[name]):
        if all((d / f).is_file() for f in (*train, *test, meta)):
            return d
    raise CifarError(f"no {name} in {root} (nor in {root / _FOLDERS[name]}); expected "
                     f"{', '.join((*train, *test, meta))} (the CIFAR python version)")


def _read(name: str, d: Path, files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for f in files:
        batch = safe_load(d / f)
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[_LABELS[name]], dtype=np.int64)
        except KeyError as e:
            raise CifarError(f"{d / f}: no {e.args[0]!r} entry") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise CifarError(f"{d / f}: data {data.shape} and {len(labels)} labels; expected "
                             "(N, 3072) and N")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def read_cifar(name: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                torch.Tensor, int]:
    """Raw images (N, 3, 32, 32) uint8 and labels of the train and test sets, and the number
    of classes (from the labels' range, checked against the meta file's names)."""
    d = find_dir(name, root)
    train_files, test_files, meta_file = _FILES[name]
    x_train, y_train = _read(name, d, train_files)
    x_test, y_test = _read(name, d, test_files)
    meta = safe_load(d / meta_file)
    names = meta.get(_LABEL_NAMES[name])
    classes = DATASETS[name].classes
    if names is not None and len(names) != classes:
        raise CifarError(f"{d / meta_file}: {len(names)} label names; {name} has {classes}")
    for y in (y_train, y_test):
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise CifarError(f"{name} labels outside 0..{classes - 1} in {d}")
    return (torch.from_numpy(x_train), torch.from_numpy(y_train), torch.from_numpy(x_test),
            torch.from_numpy(y_test), classes)


def normalise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Global contrast normalisation of each image (zero mean, unit standard deviation over its
    pixels), then the training set's mean image subtracted from both sets."""

    def gcn(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        flat = x.flatten(1)
        flat = flat - flat.mean(1, keepdim=True)
        flat = flat / flat.std(1, keepdim=True).clamp_min(GCN_EPS)
        return flat.view_as(x)

    train, test = gcn(x_train), gcn(x_test)
    mean = train.mean(0, keepdim=True)
    return train - mean, test - mean


def translate_and_mirror(
    x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = PAD
) -> torch.Tensor:
    """Each image of ``x`` (..., C, H, W) cropped at its own offset from a ``pad``-padded
    copy, then mirrored where ``flips``: ``shifts`` (..., 2) in [0, 2·pad], ``flips`` (...)."""
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    flat = torch.nn.functional.pad(x.reshape(-1, c, h, w), (pad, pad, pad, pad))
    n = flat.shape[0]
    s = shifts.reshape(n, 2).to(x.device)
    rows = (s[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, H, 1)
    cols = (s[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, W)
    crop = flat[torch.arange(n, device=x.device)[:, None, None], :, rows, cols]  # (n, H, W, C)
    crop = crop.permute(0, 3, 1, 2)
    crop = torch.where(flips.reshape(n, 1, 1, 1).to(x.device), crop.flip(-1), crop)
    return crop.reshape(*lead, c, h, w)
