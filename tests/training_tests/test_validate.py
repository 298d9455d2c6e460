"""Data checked whole before anything starts (issue 21, class 5): ``check_dataset`` refuses
truncated or corrupt archives, wrong magic numbers, counts that disagree, labels out of range,
images of the wrong shape and tampered CIFAR pickles, in one line naming the file; and checks
each dataset once (a stamp keyed by the files' sizes and times), not at every trial.
Synthetic small files; no torch needed."""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hwsearch.training import DataError, check_dataset, validate

STEMS = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setattr(validate, "DEFAULT_CACHE", cache)
    return cache


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    head = magic or struct.pack(">HBB", 0, 0x08, array.ndim)
    return head + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(
        np.uint8).tobytes()


def arrays(n_train: int = 30, n_test: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"train_x": rng.integers(0, 256, (n_train, 28, 28)),
            "train_y": rng.integers(0, 10, n_train),
            "test_x": rng.integers(0, 256, (n_test, 28, 28)),
            "test_y": rng.integers(0, 10, n_test)}


def write(d: Path, files: dict[str, bytes], gz: bool) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for key, stem in STEMS.items():
        if gz:
            (d / f"{stem}.gz").write_bytes(gzip.compress(files[key]))
        else:
            (d / stem).write_bytes(files[key])
    return d


def good_files() -> dict[str, bytes]:
    return {k: idx_bytes(v) for k, v in arrays().items()}


def _with(key: str, data: bytes) -> dict[str, bytes]:
    return {**good_files(), key: data}


IDX_BAD: dict[str, tuple[Callable[[], dict[str, bytes]], str, str]] = {
    # name: (files, the file named, what the line says)
    "images cut short": (lambda: _with("train_x", good_files()["train_x"][:-100]), "train_x",
                         "holds"),
    "labels padded": (lambda: _with("test_y", good_files()["test_y"] + b"\x00" * 3), "test_y",
                      "holds"),
    "wrong magic": (lambda: _with("train_y", idx_bytes(arrays()["train_y"],
                                                       b"\x12\x34\x08\x01")), "train_y",
                    "bad magic number"),
    "float dtype code": (lambda: _with("test_x", idx_bytes(arrays()["test_x"],
                                                           b"\x00\x00\x0d\x03")), "test_x",
                         "bad magic number"),
    "header only": (lambda: _with("test_x", b"\x00\x00\x08"), "test_x", "corrupt"),
    "counts disagree": (lambda: _with("train_y", idx_bytes(arrays()["train_y"][:-1])),
                        "train", "disagree"),
    "label out of range": (lambda: _with("test_y", idx_bytes(np.full(12, 10))), "test",
                           "allowed: 0..9"),
    "images 32x32": (lambda: _with("train_x", idx_bytes(np.zeros((30, 32, 32)))), "train",
                     "32x32"),
    "labels two-dimensional": (lambda: _with("test_y", idx_bytes(np.zeros((12, 1)))), "test",
                               "disagree"),
}


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", IDX_BAD)
def test_a_bad_idx_file_is_refused_in_one_line(case: str, gz: bool, tmp_path: Path) -> None:
    files, names, says = IDX_BAD[case]
    d = write(tmp_path / "data", files(), gz)
    with pytest.raises(DataError) as e:
        check_dataset("mnist", str(d))
    line = str(e.value)
    assert "\n" not in line and says in line, line
    shown = STEMS.get(names, "")
    assert (shown in line) if shown else (str(d) in line), line


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_truncated_gzip_archive_is_refused(cut: float, tmp_path: Path) -> None:
    d = write(tmp_path / "data", good_files(), gz=True)
    f = d / f"{STEMS['train_x']}.gz"
    f.write_bytes(f.read_bytes()[: int(f.stat().st_size * cut)])
    with pytest.raises(DataError, match=f"corrupt IDX file {f}"):
        check_dataset("mnist", str(d))


def test_good_files_are_checked_once(tmp_path: Path, own_cache: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    d = write(tmp_path / "data", good_files(), gz=True)
    check_dataset("mnist", str(d))
    assert len(list((own_cache / "checked").iterdir())) == 1
    calls: list[Path] = []
    monkeypatch.setattr(validate, "read_idx", lambda p: calls.append(p))
    check_dataset("mnist", str(d))  # the stamp: nothing read again
    assert calls == []
    monkeypatch.undo()
    monkeypatch.setattr(validate, "DEFAULT_CACHE", own_cache)
    f = d / f"{STEMS['test_y']}.gz"
    f.write_bytes(gzip.compress(idx_bytes(np.full(12, 11))))  # changed: checked again
    with pytest.raises(DataError, match="allowed: 0..9"):
        check_dataset("mnist", str(d))


# -- CIFAR ------------------------------------------------------------------------------------


def _batch(n: int = 8, labels: object = None, data: object = None) -> dict[bytes, object]:
    rng = np.random.default_rng(1)
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data,
            b"labels": list(rng.integers(0, 10, n)) if labels is None else labels}


def write_cifar10(root: Path, change: dict[str, bytes] | None = None) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (d / name).write_bytes(pickle.dumps(_batch(), protocol=2))
    (d / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [f"c{i}".encode() for i in range(10)]}, protocol=2))
    for name, data in (change or {}).items():
        (d / name).write_bytes(data)
    return d


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {MARKER}",)


MARKER = Path("/tmp/hwsearch-validate-pwned")

CIFAR_BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "tampered": (lambda: pickle.dumps({b"data": _Exploit(), b"labels": []}, protocol=2),
                 "refusing to load"),
    "truncated": (lambda: pickle.dumps(_batch(), protocol=2)[:500], "not a CIFAR batch"),
    "not a dict": (lambda: pickle.dumps([1, 2, 3], protocol=2), "not a dict"),
    "label 10": (lambda: pickle.dumps(_batch(labels=[10] * 8), protocol=2), "allowed: 0..9"),
    "negative label": (lambda: pickle.dumps(_batch(labels=[-1] * 8), protocol=2),
                       "allowed: 0..9"),
    "rows of 1024": (lambda: pickle.dumps(_batch(data=np.zeros((8, 1024), np.uint8)),
                                          protocol=2), "expected (N, 3072)"),
    "counts disagree": (lambda: pickle.dumps(_batch(labels=[1] * 7), protocol=2),
                        "expected (N, 3072) and N"),
    "no labels": (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2),
                  "no b'labels' entry"),
}


@pytest.mark.parametrize("case", CIFAR_BAD)
def test_a_bad_cifar_batch_is_refused_and_never_run(case: str, tmp_path: Path) -> None:
    MARKER.unlink(missing_ok=True)
    data, says = CIFAR_BAD[case]
    d = write_cifar10(tmp_path, {"data_batch_4": data()})
    with pytest.raises(DataError) as e:
        check_dataset("cifar10", str(tmp_path))
    line = str(e.value)
    assert "\n" not in line and says in line and str(d / "data_batch_4") in line, line
    assert not MARKER.exists()


def test_a_good_cifar_directory_passes(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    check_dataset("cifar10", str(tmp_path))


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match=f"data directory {tmp_path / 'f'} is a file"):
        check_dataset("mnist", str(tmp_path / "f"))
