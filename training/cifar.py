"""CIFAR-10/100 from the standard "python version" directory, read safely, prepared as the
authors prepared it.

Files. ``cifar-10-batches-py/`` holds ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
``batches.meta``; ``cifar-100-python/`` holds ``train``, ``test`` and ``meta``. Each is a
pickled dict (``b"data"``: uint8 (N, 3072) rows of R, G, B planes; ``b"labels"`` or
``b"fine_labels"``). Unpickling can run arbitrary code, so the reader resolves only the few
numpy globals an array needs and refuses everything else: a tampered file is an error, never
code run. torchvision is used for downloads only (the ``download`` setting), never to read.

Preparation, from the definitions (``examples/highways/cifar*-19layers``): their data are
"gcn" (global contrast normalised) with a mean image subtracted (``mean.binaryproto``), and
training draws random 32×32 crops of images padded beforehand (``..._padded``,
``crop_size: 32``) and mirrors half of them (``mirror: 1``): the NeurIPS paper's "random
translations", plus flips. The amount of padding is not in the definitions; we pad 4 pixels
with zeros (after normalisation, so zero is the mean), the usual choice for CIFAR.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .datasets import CIFAR_FILES, DATASETS, CifarError, find_cifar_dir
from .validate import read_batches, safe_load

__all__ = ["normalise", "read_cifar", "safe_load", "translate_and_mirror"]

PAD = 4  # pixels of zero padding for the random translations
GCN_EPS = 1e-8

_LABEL_NAMES = {"cifar10": b"label_names", "cifar100": b"fine_label_names"}  # in the meta file


def read_cifar(name: str, root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                torch.Tensor, int]:
    """Raw images (N, 3, 32, 32) uint8 and labels of the train and test sets, and the number
    of classes (from the labels' range, checked against the meta file's names)."""
    d = find_cifar_dir(name, root)
    train_files, test_files, meta_file = CIFAR_FILES[name]
    x_train, y_train = read_batches(name, d, train_files)
    x_test, y_test = read_batches(name, d, test_files)
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
