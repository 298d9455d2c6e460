"""Datasets from IDX files: real MNIST and Fashion-MNIST, layouts, corrupt files, subsets."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsearch.training import DataError, TrainConfig
from hwsearch.training.data import Dataset, load_dataset, read_idx
from hwsearch.training.trainer import load_data
from hwtest import parts

STEMS = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (unsigned bytes) holding ``array``."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def synthetic_arrays(n_train: int = 30, n_test: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_x": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], gz: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in STEMS.items():
        data = idx_bytes(arrays[key])
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return directory


def check_matches(ds: Dataset, arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        expected = arrays[f"{split}_x"].astype(np.float32)[:, None] / 255.0
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape == expected.shape
        np.testing.assert_array_equal(x.numpy(), expected)
        np.testing.assert_array_equal(y.numpy(), arrays[f"{split}_y"])


def assert_one_line(err: pytest.ExceptionInfo[DataError], *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# -- real data --------------------------------------------------------------------------------


def test_real_mnist(mnist: Dataset) -> None:
    assert mnist.name == "mnist" and mnist.num_classes == 10
    assert mnist.x_train.shape == (60000, 1, 28, 28)
    assert mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.y_train.shape == (60000,) and mnist.y_test.shape == (10000,)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.in_features == 784 and mnist.in_channels == 1
    for x in (mnist.x_train, mnist.x_test):
        assert x.min().item() == 0.0 and x.max().item() == 1.0
    # 0..255 mapped by /255: every value is k/255
    values = torch.unique(mnist.x_test[:100])
    torch.testing.assert_close(values * 255, torch.round(values * 255), rtol=0, atol=1e-4)
    assert mnist.y_train.min().item() == 0 and mnist.y_train.max().item() == 9
    assert torch.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first labels


def test_real_mnist_from_raw_dir(mnist_dir: Path, mnist: Dataset) -> None:
    raw = mnist_dir / "raw" if (mnist_dir / "raw").is_dir() else mnist_dir
    again = load_dataset("mnist", raw)
    assert torch.equal(again.y_train, mnist.y_train) and torch.equal(again.y_test, mnist.y_test)
    assert torch.equal(again.x_train[::997], mnist.x_train[::997])
    assert torch.equal(again.x_test, mnist.x_test)
    again_str = load_dataset("mnist", str(raw))  # a str path works too
    assert torch.equal(again_str.y_test, mnist.y_test)


def test_real_mnist_via_train_config(mnist_dir: Path) -> None:
    config = TrainConfig(data_dir=str(mnist_dir), limit_train=500, device="cpu", dtype="float64")
    data = load_data(config)
    assert data.x_train.shape == (500, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.x_train.dtype == torch.float64 and data.y_train.dtype == torch.int64


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=parts.reason(
    "Fashion-MNIST", f"not found at {FASHION_DIR} (scripts/setup installs it as root)"))
def test_fashion_mnist() -> None:
    ds = load_dataset("fashion-mnist", FASHION_DIR)
    assert ds.name == "fashion-mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.min().item() == 0.0 and ds.x_train.max().item() == 1.0
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10


# -- layouts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["uncompressed", "gz"])
@pytest.mark.parametrize("layout", [".", "raw", "MNIST/raw"])
def test_synthetic_layouts(tmp_path: Path, gz: bool, layout: str) -> None:
    arrays = synthetic_arrays()
    write_idx_dir(tmp_path / layout, arrays, gz)
    ds = load_dataset("mnist", tmp_path)
    check_matches(ds, arrays)
    check_matches(load_dataset("mnist", tmp_path / layout), arrays)


def test_fashion_layout(tmp_path: Path) -> None:
    arrays = synthetic_arrays(seed=1)
    write_idx_dir(tmp_path / "FashionMNIST" / "raw", arrays, gz=False)
    check_matches(load_dataset("fashion-mnist", tmp_path), arrays)
    with pytest.raises(DataError):  # MNIST does not look in FashionMNIST/
        load_dataset("mnist", tmp_path)


def test_pixel_scaling(tmp_path: Path) -> None:
    arrays = synthetic_arrays(n_train=3, n_test=2)
    arrays["train_x"][0] = 0
    arrays["train_x"][1] = 255
    arrays["train_x"][2] = 51
    ds = load_dataset("mnist", write_idx_dir(tmp_path, arrays, gz=False))
    assert torch.all(ds.x_train[0] == 0.0) and torch.all(ds.x_train[1] == 1.0)
    torch.testing.assert_close(ds.x_train[2], torch.full((1, 28, 28), 0.2))


def test_a_process_loads_the_same_files_once(tmp_path: Path) -> None:
    """A search worker trains pack after pack of one dataset: the second load is the first's
    tensors; a changed file is read again."""
    import os

    arrays = synthetic_arrays()
    directory = write_idx_dir(tmp_path, arrays, gz=False)
    first = load_dataset("mnist", directory)
    assert load_dataset("mnist", directory) is first
    changed = synthetic_arrays(seed=1)
    path = directory / STEMS["train_x"]
    path.write_bytes(idx_bytes(changed["train_x"]))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = load_dataset("mnist", directory)
    assert again is not first
    check_matches(again, {**arrays, "train_x": changed["train_x"]})


def test_read_idx(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)


# -- errors -----------------------------------------------------------------------------------

def test_missing_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        load_dataset("mnist", missing)
    assert_one_line(err, str(missing), *STEMS.values())


def test_dir_without_files(tmp_path: Path) -> None:
    arrays = synthetic_arrays()
    write_idx_dir(tmp_path, arrays, gz=True)
    (tmp_path / f"{STEMS['test_y']}.gz").unlink()  # three of four files are not enough
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert_one_line(err, str(tmp_path), *STEMS.values())


def _valid_gz() -> bytes:
    return gzip.compress(idx_bytes(synthetic_arrays()["train_y"]))


CORRUPTIONS = {
    "truncated-gz": lambda: _valid_gz()[: len(_valid_gz()) // 2],
    "garbage-gz": lambda: bytes(range(256)) * 4,
    "empty-gz": lambda: b"",
    "bad-magic": lambda: gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 40),
    "short-payload": lambda: gzip.compress(struct.pack(">HBBI", 0, 8, 1, 30) + b"\x01" * 7),
    "short-header": lambda: gzip.compress(struct.pack(">HBB", 0, 8, 3) + b"\x00\x00"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_file(tmp_path: Path, corruption: str) -> None:
    write_idx_dir(tmp_path, synthetic_arrays(), gz=True)
    bad = tmp_path / f"{STEMS['train_y']}.gz"
    bad.write_bytes(CORRUPTIONS[corruption]())
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert_one_line(err, str(bad), "corrupt")
    with pytest.raises(DataError):
        read_idx(bad)


def test_corrupt_uncompressed_file(tmp_path: Path) -> None:
    write_idx_dir(tmp_path, synthetic_arrays(), gz=False)
    bad = tmp_path / STEMS["test_x"]
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert_one_line(err, str(bad))


def test_images_and_labels_disagree(tmp_path: Path) -> None:
    arrays = synthetic_arrays()
    arrays["test_y"] = arrays["test_y"][:-1]
    write_idx_dir(tmp_path, arrays, gz=False)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path)
    assert_one_line(err, "test", str(tmp_path))


def test_unknown_dataset_and_no_dir() -> None:
    with pytest.raises(DataError) as err:
        load_dataset("imagenet", "/tmp")
    assert_one_line(err, "'imagenet'", "mnist")
    with pytest.raises(DataError) as err:
        load_dataset("mnist", None, download=False)
    assert_one_line(err, "`data_dir`", STEMS["train_x"])


# -- subsets and devices ----------------------------------------------------------------------

def test_limit_train(tmp_path: Path) -> None:
    arrays = synthetic_arrays(n_train=30, n_test=12)
    ds = load_dataset("mnist", write_idx_dir(tmp_path, arrays, gz=True))
    sub = ds.limit_train(10)
    assert sub.x_train.shape == (10, 1, 28, 28) and sub.y_train.shape == (10,)
    assert torch.equal(sub.x_train, ds.x_train[:10]) and torch.equal(sub.y_train, ds.y_train[:10])
    assert sub.x_test is ds.x_test and sub.y_test is ds.y_test  # the test set is untouched
    assert ds.limit_train(None) is ds and ds.limit_train(30) is ds and ds.limit_train(1000) is ds
    assert len(ds.limit_train(1).y_train) == 1
    config = TrainConfig(data_dir=str(tmp_path), limit_train=7, device="cpu")
    assert len(load_data(config).y_train) == 7


def test_to_dtype(tmp_path: Path) -> None:
    arrays = synthetic_arrays()
    ds = load_dataset("mnist", write_idx_dir(tmp_path, arrays, gz=False)).to("cpu", torch.float64)
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float64
    assert ds.y_train.dtype == torch.int64
    np.testing.assert_allclose(ds.x_test.numpy()[:, 0], arrays["test_x"] / 255.0, rtol=1e-7)


@pytest.mark.parametrize("shape", [(300, 784), (300, 1, 28, 28), (300, 3, 32, 32)])
def test_row_gather_is_advanced_indexing(shape: tuple[int, ...]) -> None:
    """The loop's batches (whole rows copied into a reused buffer) are exactly ``x[idx]``,
    step after step, for FC inputs, MNIST images and CIFAR images."""
    from hwsearch.training.loop import RowGather

    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    gather = RowGather(x, 4 * 16)
    batches = []
    for _ in range(3):
        idx = torch.stack([torch.randperm(shape[0], generator=g)[:16] for _ in range(4)])
        xb = gather.gather(idx)
        assert xb.shape == (4, 16, *shape[1:])
        assert torch.equal(xb, x[idx])
        batches.append(xb.clone())
    assert not torch.equal(batches[0], batches[2])  # each step's own rows
