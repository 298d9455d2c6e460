"""CIFAR from a local directory in the standard python format: written here, small and
synthetic, in exactly that format (there is no internet); read safely; normalised and augmented
as the authors' definitions say."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsearch.training import DataError, Hyperparams, TrainConfig
from hwsearch.training.cifar import PAD, translate_and_mirror
from hwsearch.training.data import load_dataset
from hwsearch.training.datasets import check_dataset
from hwsearch.training.trainer import train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _batch(path: Path, n: int, classes: int, key: bytes, seed: int) -> None:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"synthetic", key: rng.integers(0, classes, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar10(root: Path, n: int = 20) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        _batch(d / f"data_batch_{i}", n, 10, b"labels", i)
    _batch(d / "test_batch", n, 10, b"labels", 9)
    with (d / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)],
                     b"num_cases_per_batch": n, b"num_vis": 3072}, f, protocol=2)
    return d


def write_cifar100(root: Path, n: int = 30) -> Path:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    _batch(d / "train", n, 100, b"fine_labels", 1)
    _batch(d / "test", n, 100, b"fine_labels", 2)
    with (d / "meta").open("wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, f,
                    protocol=2)
    return d


def test_cifar10_reads_and_normalises(tmp_path: Path) -> None:
    d = write_cifar10(tmp_path)
    for where in (tmp_path, d):  # the parent or the folder itself
        data = load_dataset("cifar10", where)
        assert data.x_train.shape == (100, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)
        assert data.num_classes == 10 and data.augment
    raw = []
    for i in range(1, 6):
        with (d / f"data_batch_{i}").open("rb") as f:
            raw.append(pickle.load(f, encoding="bytes"))  # the test's own files: trusted here
    assert data.y_train.tolist() == [y for r in raw for y in r[b"labels"]]
    # each image contrast-normalised (numpy, float64), then the training mean image removed
    images = np.concatenate([r[b"data"] for r in raw]).astype(np.float64)
    images = (images - images.mean(1, keepdims=True)) / images.std(1, ddof=1, keepdims=True)
    expected = (images - images.mean(0)).reshape(-1, 3, 32, 32)
    np.testing.assert_allclose(data.x_train.numpy(), expected, atol=1e-4)
    assert data.x_train.mean(0).abs().max() < 1e-5


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    data = load_dataset("cifar100", tmp_path)
    assert data.num_classes == 100 and len(data.y_train) == 30
    assert int(data.y_train.max()) < 100


class _Exploit:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {_MARKER}",))


_MARKER = ""


def test_a_tampered_batch_is_refused_and_never_run(tmp_path: Path) -> None:
    global _MARKER
    d = write_cifar10(tmp_path)
    _MARKER = str(tmp_path / "pwned")
    with (d / "data_batch_3").open("wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": []}, f, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load (posix|os)\.system"):
        load_dataset("cifar10", tmp_path)
    assert not Path(_MARKER).exists()


def test_missing_files_name_what_is_expected_and_nothing_downloads(tmp_path: Path) -> None:
    d = write_cifar10(tmp_path)
    (d / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch.*`download`"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DataError, match="test_batch"):
        check_dataset("cifar10", str(tmp_path))
    with pytest.raises(DataError, match="no `data_dir` for cifar100"):
        load_dataset("cifar100", None)


def test_translate_and_mirror() -> None:
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    centre = torch.full((2, 2), PAD)
    none = torch.zeros(2, dtype=torch.bool)
    assert torch.equal(translate_and_mirror(x, centre, none), x)
    down = translate_and_mirror(x, torch.tensor([[0, PAD], [PAD, 2 * PAD]]), none)
    assert torch.all(down[0, :, :PAD] == 0) and torch.equal(down[0, :, PAD:], x[0, :, :-PAD])
    assert torch.equal(down[1, :, :, : -PAD], x[1, :, :, PAD:])  # moved left
    flipped = translate_and_mirror(x, centre, torch.tensor([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    # a (K, B, ...) batch keeps its shape
    assert translate_and_mirror(x.expand(4, -1, -1, -1, -1), torch.full((4, 2, 2), PAD),
                                torch.zeros(4, 2, dtype=torch.bool)).shape == (4, 2, 3, 32, 32)


def test_a_cifar_preset_trains_on_it(tmp_path: Path) -> None:
    write_cifar10(tmp_path, n=10)
    config = TrainConfig(dataset="cifar10", data_dir=str(tmp_path), model="cifar10-highway-19",
                         epochs=1, batch_size=10, limit_train=20, device="cpu")
    hps = [Hyperparams.for_model(config.model, seed=s) for s in (1, 2)]
    results, params = train(config, hps, packed=True)
    assert params == 2_265_928
    assert all(len(r.epochs) == 1 and r.test_accuracy is not None for r in results)
