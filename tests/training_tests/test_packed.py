"""Packs of K trials: same numbers as K single runs, trials isolated, weights convertible.

Tolerance. Everything runs in float64 on the CPU with identical seeds, data order and update
rule; the only difference between a pack and a single run is how each matmul is summed
(``baddbmm`` over stacked weights vs ``F.linear``; the loss mean; ``p −= lr·buf`` vs
``p.add_(buf, alpha=−lr)``). Those are reorderings worth ~1e-16 relative per op. Over ~100 SGD
steps of a 10-layer net they are amplified only mildly (measured: ≲1e-15 relative on the loss
curves and weights), so 1e-9 relative leaves six orders of magnitude of headroom while still
catching any real difference (a wrong lr, momentum, seed or data order changes the first epoch's
loss at the 1e-3 level or more).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hwsearch.models import FCConfig
from hwsearch.models.fc import FCNet
from hwsearch.models.packed import PackedFCNet
from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.data import Dataset
from hwsearch.training.engines import PackedEngine
from hwsearch.training.loop import TrialResult, fit
from hwsearch.training.trainer import build_engine, load_data, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")

REL = 1e-9

# depth 10, 1280 examples, batch 64: 20 steps per epoch, 100 steps in 5 epochs
CONFIG = dict(depth=10, epochs=5, batch_size=64, limit_train=1280, device="cpu", dtype="float64")

GOOD = [  # relu, everything else differs per trial
    Hyperparams(lr=0.05, momentum=0.9, lr_decay=0.9, activation="relu", gate_bias=-3.0, seed=1),
    Hyperparams(lr=0.03, momentum=0.5, lr_decay=0.6, activation="relu", gate_bias=-1.0, seed=2),
    Hyperparams(lr=0.1, momentum=0.0, lr_decay=1.0, activation="relu", gate_bias=-2.0, seed=3),
    Hyperparams(lr=0.01, momentum=0.95, lr_decay=0.7, activation="relu", gate_bias=-4.0,
                seed=4),
]
BAD = Hyperparams(lr=1e6, momentum=0.9, lr_decay=0.9, activation="relu", gate_bias=-2.0, seed=9)


@pytest.fixture(scope="module")
def config(mnist_dir: Path) -> TrainConfig:
    return TrainConfig(data_dir=str(mnist_dir), **CONFIG)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data(config: TrainConfig) -> Dataset:
    return load_data(config)


@pytest.fixture(scope="module")
def singles(config: TrainConfig, data: Dataset, torch_one_thread: None) -> list[TrialResult]:
    results = []
    for hp in GOOD:
        (result,), _ = train(config, [hp], data, packed=False)
        results.append(result)
    return results


def losses(result: TrialResult) -> list[float]:
    return [e.train_loss for e in result.epochs]


def assert_same_curve(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=REL, abs=0)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].shape == b[key].shape and a[key].dtype == b[key].dtype, key
        scale = b[key].abs().max().item() or 1.0
        assert (a[key] - b[key]).abs().max().item() <= REL * scale, key


def assert_same_trial(packed: TrialResult, single: TrialResult, weights: bool = True) -> None:
    assert not packed.diverged and not single.diverged
    assert_same_curve(losses(packed), losses(single))
    assert [e.train_accuracy for e in packed.epochs] == [e.train_accuracy for e in single.epochs]
    assert [e.lr for e in packed.epochs] == pytest.approx([e.lr for e in single.epochs], rel=1e-12)
    assert packed.test_accuracy == single.test_accuracy
    if weights:
        assert packed.state_dict is not None and single.state_dict is not None
        assert_same_weights(packed.state_dict, single.state_dict)


# -- equivalence ------------------------------------------------------------------------------

@pytest.mark.slow
def test_pack_equals_single_runs(config: TrainConfig, data: Dataset,
                                 singles: list[TrialResult]) -> None:
    results, params = train(config, GOOD, data, packed=True)
    assert params == 85_660
    for packed, single in zip(results, singles, strict=True):
        assert len(packed.epochs) == 5
        assert_same_trial(packed, single)
    # the trials really differ, so agreement is not an accident of identical runs
    finals = [s.epochs[-1].train_loss for s in singles]
    assert len({round(f, 6) for f in finals}) == len(finals)
    assert all(s.epochs[-1].train_loss < s.epochs[0].train_loss for s in singles)


@pytest.mark.slow
def test_plain_pack_equals_single_runs(config: TrainConfig, data: Dataset) -> None:
    plain = TrainConfig(**{**config.to_dict(), "model": "plain", "epochs": 2, "eval_test": False})
    hps = [Hyperparams(lr=0.02, momentum=0.9, lr_decay=0.8, activation="tanh", seed=5),
           Hyperparams(lr=0.05, momentum=0.3, lr_decay=0.95, activation="tanh", seed=6)]
    results, _ = train(plain, hps, data, packed=True)
    for hp, packed in zip(hps, results, strict=True):
        (single,), _ = train(plain, [hp], data, packed=False)
        assert_same_trial(packed, single)


def test_same_seed_in_a_pack_gives_identical_trials(config: TrainConfig, data: Dataset) -> None:
    short = TrainConfig(**{**config.to_dict(), "depth": 3, "epochs": 2, "eval_test": False})
    hp = GOOD[0]
    a, b = train(short, [hp, hp], data, packed=True)[0]
    assert losses(a) == losses(b)


# -- isolation --------------------------------------------------------------------------------

@pytest.mark.slow
def test_absurd_lr_diverges_alone(config: TrainConfig, data: Dataset,
                                  singles: list[TrialResult]) -> None:
    trials = [GOOD[0], GOOD[1], BAD, GOOD[2], GOOD[3]]
    results, _ = train(config, trials, data, packed=True)
    bad = results[2]
    assert bad.diverged_epoch == 1 and bad.epochs == [] and bad.state_dict is None
    assert bad.best_train_loss == math.inf
    for packed, single in zip(results[:2] + results[3:], singles, strict=True):
        assert_same_trial(packed, single)


@pytest.mark.slow
def test_late_divergence_is_isolated(config: TrainConfig, data: Dataset,
                                     singles: list[TrialResult]) -> None:
    """Poison trial 1's weights after epoch 2: it diverges at epoch 3, keeps epochs 1–2 as they
    were, with the weights of the better of them, and the other trials go on exactly as on
    their own."""
    engine, _ = build_engine(config, GOOD, data, packed=True)
    assert isinstance(engine, PackedEngine)
    victim = 1
    seen: dict[int, dict[str, torch.Tensor]] = {}

    def poison(epoch: int, _: object) -> None:
        seen[epoch] = engine.pack.trial_state_dict(victim)
        if epoch == 2:
            with torch.no_grad():
                engine.pack.w0[victim, 0, 0] = math.inf

    results = fit(engine, data, [hp.seed for hp in GOOD], epochs=5, batch_size=64,
                  on_epoch=poison)
    hit = results[victim]
    assert hit.diverged_epoch == 3 and len(hit.epochs) == 2
    best = min(hit.epochs, key=lambda e: e.train_loss).epoch
    assert hit.best_epoch == best and hit.best_train_loss == hit.epochs[best - 1].train_loss
    assert hit.state_dict is not None
    assert_same_weights(hit.state_dict, seen[best])
    assert_same_curve(losses(hit), losses(singles[victim])[:2])
    for i, (packed, single) in enumerate(zip(results, singles, strict=True)):
        if i != victim:
            assert_same_trial(packed, single)
    # the frozen trial leaves no NaN/inf behind in the shared tensors
    assert all(torch.isfinite(p).all() for p in engine.pack.parameters())
    assert engine.lr0[victim].item() == 0.0


# -- configuration ----------------------------------------------------------------------------

@pytest.mark.slow
def test_mixed_activations_in_one_pack_equal_single_runs(
    config: TrainConfig, data: Dataset, singles: list[TrialResult]
) -> None:
    """relu and tanh trials, interleaved, in one pack: each trains exactly as on its own, and
    results come back in the order given."""
    tanh = [Hyperparams(lr=0.02, momentum=0.9, lr_decay=0.8, activation="tanh", gate_bias=-2.0,
                        seed=7),
            Hyperparams(lr=0.05, momentum=0.5, lr_decay=0.5, activation="tanh", gate_bias=-5.0,
                        seed=8)]
    mixed = [GOOD[0], tanh[0], GOOD[1], tanh[1]]
    seen: list[list[int]] = []
    results, _ = train(config, mixed, data, packed=True,
                       on_epoch=lambda e, rs: seen.append([len(r.epochs) for r in rs]))
    tanh_singles = [train(config, [hp], data, packed=False)[0][0] for hp in tanh]
    for packed, single in zip(results, [singles[0], tanh_singles[0], singles[1],
                                        tanh_singles[1]], strict=True):
        assert_same_trial(packed, single)
    assert seen[0] == [1, 1, 1, 1]


def test_carry_gate_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="carry gate"):
        PackedFCNet(FCConfig(depth=3, carry_gate=True), 2)


# -- state-dict conversion --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["highway", "plain"])
def test_state_dict_round_trip(kind: str, dtype: torch.dtype) -> None:
    config = FCConfig(kind=kind, depth=4, activation="tanh", gate_bias=-1.5)
    nets = [FCNet(config, torch.Generator().manual_seed(s)).to(dtype) for s in range(3)]
    with torch.no_grad():  # make every parameter distinct, biases included
        for i, net in enumerate(nets):
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(i),
                                   dtype=dtype) * 0.01)
    originals = [n.state_dict() for n in nets]
    pack = PackedFCNet.from_state_dicts(config, originals)
    assert pack.k == 3 and pack.w0.dtype == dtype
    for i, original in enumerate(originals):
        back = pack.trial_state_dict(i)
        assert set(back) == set(original)
        for key, value in original.items():
            assert back[key].dtype == value.dtype and back[key].is_contiguous()
            assert torch.equal(back[key], value), key
        FCNet(config).to(dtype).load_state_dict(back, strict=True)
    # and the pack computes what each net computes
    x = torch.rand(5, 784, generator=torch.Generator().manual_seed(9), dtype=dtype)
    with torch.no_grad():
        out = pack(x.expand(3, -1, -1))
        for i, net in enumerate(nets):
            tol = 1e-12 if dtype == torch.float64 else 1e-5
            torch.testing.assert_close(out[i], net(x), rtol=tol, atol=tol)
