"""A dataset's files checked whole before anything starts, without torch: a launch, ``train``
and the report refuse a truncated or corrupt archive, a wrong magic number, images and labels
that disagree in count, labels out of range, images of the wrong shape, or a tampered CIFAR
pickle, in one line, before a study is created or Ray starts (``check_dataset``).

Each dataset is checked once: a stamp keyed by its files' paths, sizes and modification times
is kept in the cache (``$HWSEARCH_DATA/checked``), so a second launch on the same files, and
every trial, skips the check. The IDX decoder here also fills the decoded-array cache the
trials load from (``read_idx``), so the check costs no extra decode later.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import _IDX_FILES, DATASETS, CifarError, DataError

DEFAULT_CACHE = Path(os.environ.get("HWSEARCH_DATA", Path.home() / ".cache" / "highway-search"))
IDX_UBYTE = 0x08
_CIFAR_LABELS = {"cifar10": b"labels", "cifar100": b"fine_labels"}
_CIFAR_ROW = 3 * 32 * 32
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


# -- IDX ------------------------------------------------------------------------------------


def _cache_path(path: Path) -> Path | None:
    """Where the decoded array of ``path`` is kept: keyed by the file's path, size and
    modification time, so a changed file is decoded again. None without a usable cache."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return DEFAULT_CACHE / "idx" / f"{path.name}-{key.hexdigest()[:16]}.npy"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not); a corrupt file is a one-line :class:`DataError`.

    The decoded array is cached (``$HWSEARCH_DATA/idx``, default ``~/.cache/highway-search``):
    every pack of a search reads the same files, and decoding is far slower than loading the
    cached array (docs/performance.md)."""
    cached = _cache_path(path)
    if cached is not None and cached.is_file():
        try:
            return np.load(cached)
        except (OSError, ValueError):
            pass  # unreadable: decode again
    array = decode_idx(path)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, array)
            os.replace(tmp, cached)
        except OSError:
            pass  # a read-only cache only costs time
    return array


def decode_idx(path: Path) -> np.ndarray:
    """One IDX file decoded, its size checked against its header (a truncated or padded file
    is refused, as is a gzip archive cut short)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"corrupt IDX file {path}: {e}") from None
    try:
        zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != IDX_UBYTE or not 1 <= ndim <= 4:
            raise ValueError(f"bad magic number 0x{int.from_bytes(raw[:4], 'big'):08x}")
        shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        body = len(raw) - 4 - 4 * ndim
        if body != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"header says {shape} ({int(np.prod(shape))} bytes) but the file "
                             f"holds {body}")
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (ValueError, struct.error) as e:
        raise DataError(f"corrupt IDX file {path}: {e}") from None


def check_idx_arrays(name: str, d: Path, arrays: dict[str, np.ndarray]) -> None:
    """Images (N, H, W) of the dataset's shape, as many labels, each a class of the dataset."""
    info = DATASETS[name]
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{name} {split} files in {d} disagree: images {x.shape}, labels {y.shape}"
            )
        if tuple(x.shape[1:]) != info.shape[1:]:
            raise DataError(f"{name} {split} images ({_IDX_FILES[split + '_x']}) in {d} are "
                            f"{x.shape[1]}x{x.shape[2]}; {name} images are "
                            f"{info.shape[1]}x{info.shape[2]}")
        if len(y) and int(y.max()) >= info.classes:
            raise DataError(f"{name} {split} labels ({_IDX_FILES[split + '_y']}) in {d} reach "
                            f"{int(y.max())}; allowed: 0..{info.classes - 1}")


# -- CIFAR ----------------------------------------------------------------------------------


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
    except PermissionError:
        raise CifarError(f"cannot read {path}: permission denied") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError, MemoryError, OSError) as e:
        raise CifarError(f"{path}: not a CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(out, dict):
        raise CifarError(f"{path}: not a CIFAR batch (a {type(out).__name__}, not a dict)")
    return out


def read_batches(name: str, d: Path, files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels of ``files``, each checked."""
    xs, ys = [], []
    classes = DATASETS[name].classes
    for f in files:
        batch = safe_load(d / f)
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[_CIFAR_LABELS[name]], dtype=np.int64)
        except KeyError as e:
            raise CifarError(f"{d / f}: no {e.args[0]!r} entry") from None
        except (TypeError, ValueError, OverflowError) as e:
            raise CifarError(f"{d / f}: not a CIFAR batch ({e})") from None
        if data.ndim != 2 or data.shape[1] != _CIFAR_ROW or labels.ndim != 1 or len(
                data) != len(labels):
            raise CifarError(f"{d / f}: data {data.shape} and labels {labels.shape}; expected "
                             f"(N, {_CIFAR_ROW}) and N")
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise CifarError(f"{d / f}: labels {labels.min()}..{labels.max()}; allowed: "
                             f"0..{classes - 1}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


# -- once per dataset -------------------------------------------------------------------------


def stamp(name: str, files: Sequence[Path]) -> Path | None:
    """The stamp that says these files were checked whole; None when one cannot be read."""
    h = hashlib.sha256(name.encode())
    try:
        for f in files:
            st = f.stat()
            h.update(f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    except OSError:
        return None
    return DEFAULT_CACHE / "checked" / f"{name}-{h.hexdigest()[:24]}"


def mark_checked(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass  # a read-only cache only costs a second check next time
