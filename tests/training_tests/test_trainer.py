"""The training loop: determinism, the lr schedule, divergence, real learning, conv presets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.fc import FCNet, count_parameters
from hwsearch.training import ConfigError, Hyperparams, TrainConfig
from hwsearch.training.data import Dataset
from hwsearch.training.engines import SingleEngine
from hwsearch.training.loop import TrialResult, fit
from hwsearch.training.trainer import build_engine, build_model, load_data, train

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def synthetic(n: int = 320, n_test: int = 64, shape: tuple[int, ...] = (1, 28, 28),
              seed: int = 0) -> Dataset:
    """Random images whose label is a fixed function of the pixels (so nets can learn it)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + n_test, *shape, generator=g)
    proj = torch.randn(math.prod(shape), 10, generator=g)
    y = (x.flatten(1) @ proj).argmax(1)
    return Dataset("mnist", x[:n], y[:n], x[n:], y[n:], 10)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic()


SMALL = TrainConfig(depth=4, epochs=3, batch_size=32, device="cpu")  # 10 steps per epoch


def curve(result: TrialResult) -> list[float]:
    return [e.train_loss for e in result.epochs]


def run(config: TrainConfig, hp: Hyperparams, data: Dataset) -> TrialResult:
    (result,), _ = train(config, [hp], data, packed=False)
    return result


# -- determinism ------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["highway", "plain"])
def test_same_seed_same_run(data: Dataset, model: str) -> None:
    config = TrainConfig(model=model, depth=4, epochs=3, batch_size=32, device="cpu")
    hp = Hyperparams(lr=0.05, activation="relu", seed=11)
    a, b = run(config, hp, data), run(config, hp, data)
    assert len(a.epochs) == 3 and not a.diverged
    assert curve(a) == curve(b)
    assert [e.train_accuracy for e in a.epochs] == [e.train_accuracy for e in b.epochs]
    assert a.test_accuracy is not None and a.test_accuracy == b.test_accuracy
    assert a.state_dict is not None and b.state_dict is not None
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    c = run(config, Hyperparams(lr=0.05, activation="relu", seed=12), data)
    assert all(x != y for x, y in zip(curve(a), curve(c), strict=True))
    assert not torch.equal(a.state_dict["first.linear.weight"], c.state_dict["first.linear.weight"])


def test_global_rng_does_not_matter(data: Dataset) -> None:
    """A trial's numbers depend on its seed alone, not on the global RNG state."""
    hp = Hyperparams(seed=3)
    torch.manual_seed(0)
    a = run(SMALL, hp, data)
    torch.manual_seed(12345)
    torch.rand(100)
    b = run(SMALL, hp, data)
    assert curve(a) == curve(b)


def test_loss_decreases_on_learnable_data(data: Dataset) -> None:
    config = TrainConfig(depth=4, epochs=5, batch_size=32, device="cpu")
    result = run(config, Hyperparams(lr=0.05, activation="relu", seed=1), data)
    losses = curve(result)
    assert losses[-1] < 0.8 * losses[0]
    assert result.best_train_loss == min(losses)
    assert result.final is result.epochs[-1] and result.final.epoch == 5


# -- the learning-rate schedule ---------------------------------------------------------------

def _fit_single(data: Dataset, config: TrainConfig, hp: Hyperparams) -> tuple[SingleEngine,
                                                                                TrialResult]:
    engine, _ = build_engine(config, [hp], data, packed=False)
    assert isinstance(engine, SingleEngine)
    (result,) = fit(engine, data, [hp.seed], epochs=config.epochs, batch_size=config.batch_size,
                    staircase=config.staircase, eval_test=config.eval_test)
    return engine, result


@pytest.mark.parametrize("staircase", [False, True])
def test_lr_schedule(data: Dataset, staircase: bool) -> None:
    """lr_t = lr0 · lr_decay^(t / T) over the run's T steps; staircase moves once an epoch."""
    lr0, decay, steps_per_epoch, epochs = 0.02, 0.5, 10, 3
    config = TrainConfig(depth=3, epochs=epochs, batch_size=32, staircase=staircase,
                         eval_test=False, device="cpu")
    hp = Hyperparams(lr=lr0, momentum=0.5, lr_decay=decay, activation="relu")
    engine, result = _fit_single(data, config, hp)
    assert not result.diverged and len(result.epochs) == epochs
    total = epochs * steps_per_epoch
    for record in result.epochs:
        last_step = record.epoch * steps_per_epoch - 1  # steps count from 0
        smooth = lr0 * decay ** (last_step / total)
        stairs = lr0 * decay ** ((last_step // steps_per_epoch) / epochs)
        expected = stairs if staircase else smooth
        assert record.lr == pytest.approx(expected, rel=1e-12)
        assert smooth != pytest.approx(stairs)  # so the two variants are told apart
        assert record.test_accuracy is None and result.test_accuracy is None
    # the optimizer really used the recorded rate at the last step
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(result.epochs[-1].lr, rel=1e-12)
    # the decay means the same whatever the number of epochs: the rate ends near lr0 · decay
    assert result.epochs[-1].lr == pytest.approx(lr0 * decay, rel=0.1 if not staircase else 0.3)


def test_lr_schedule_packed(data: Dataset) -> None:
    config = TrainConfig(depth=3, epochs=2, batch_size=32, staircase=True,
                         eval_test=False, device="cpu")
    hps = [Hyperparams(lr=0.1, lr_decay=0.9, activation="relu", seed=1),
           Hyperparams(lr=0.01, lr_decay=0.5, activation="relu", seed=2)]
    results, _ = train(config, hps, data, packed=True)
    for hp, result in zip(hps, results, strict=True):
        for record in result.epochs:
            exponent = (record.epoch - 1) / 2
            assert record.lr == pytest.approx(hp.lr * hp.lr_decay**exponent, rel=1e-6)


def test_the_objective_is_the_best_epochs_full_training_set_loss(data: Dataset) -> None:
    """Each epoch's train_loss is the cross-entropy of that epoch's weights over the whole
    training set (not the mean of the minibatch losses); the value is the lowest; the weights
    kept are that epoch's, even when a later epoch is worse."""
    import torch.nn.functional as F

    config = TrainConfig(depth=3, epochs=3, batch_size=32, eval_test=False, device="cpu")
    hp = Hyperparams(lr=0.05, momentum=0.5, lr_decay=1.0, activation="relu", seed=3)
    engine, _ = build_engine(config, [hp], data, packed=False)
    seen = {}

    def spoil_after_two(epoch: int, results) -> None:
        model = engine.model
        with torch.no_grad():
            ce = F.cross_entropy(model(data.x_train).double(), data.y_train).item()
        assert results[0].epochs[-1].train_loss == pytest.approx(ce, rel=1e-9)
        seen[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        if epoch == 2:  # make the next epoch start far worse than this one ended
            with torch.no_grad():
                model.classifier.weight.mul_(-2.0)  # confidently wrong, still finite

    (result,) = fit(engine, data, [hp.seed], epochs=3, batch_size=32, eval_test=False,
                    on_epoch=spoil_after_two)
    losses = [e.train_loss for e in result.epochs]
    assert losses[2] > losses[1]  # the spoiled epoch is worse
    assert result.best_epoch == losses.index(min(losses)) + 1 != 3
    assert result.best_train_loss == min(losses)
    assert all(e.running_loss != e.train_loss for e in result.epochs)
    for key, value in result.state_dict.items():
        assert torch.equal(value, seen[result.best_epoch][key]), key


# -- divergence -------------------------------------------------------------------------------

def test_the_divergence_rule_is_nan_inf_or_100_times_chance() -> None:
    """A loss is diverged when it is not finite or past 100 × chance level (ln classes)."""
    from hwsearch.training.loop import diverged

    chance = math.log(10)
    assert not diverged(100 * chance * (1 - 1e-9), 10) and not diverged(2.3, 10)
    assert diverged(100 * chance * (1 + 1e-9), 10)
    assert diverged(math.nan, 10) and diverged(math.inf, 10)
    assert diverged(100 * math.log(100) * (1 + 1e-9), 100)
    assert not diverged(100 * math.log(100) * (1 - 1e-9), 100)  # chance is the data's own


def test_a_finite_explosion_past_100_times_chance_diverges(data: Dataset) -> None:
    """Weights scaled so the loss is finite but far past 100 × ln 10: the run is diverged at
    that epoch, with the epochs before kept."""
    config = TrainConfig(depth=3, epochs=3, batch_size=32, device="cpu")
    hp = Hyperparams(lr=0.01, momentum=0.0, lr_decay=1.0, activation="relu", seed=2)
    engine, _ = build_engine(config, [hp], data, packed=False)
    assert isinstance(engine, SingleEngine)

    def blow_up(epoch: int, _: object) -> None:
        if epoch == 1:
            with torch.no_grad():
                engine.model.classifier.weight.mul_(1e6)  # confidently wrong: CE ~ 1e5, finite

    (result,) = fit(engine, data, [hp.seed], epochs=3, batch_size=32, on_epoch=blow_up)
    assert result.diverged_epoch == 2 and [e.epoch for e in result.epochs] == [1]
    assert math.isfinite(result.best_train_loss)


def test_the_default_hyperparameters_and_batch_are_the_documented_ones() -> None:
    """tanh, lr 0.1, momentum 0.9, lr decay 0.7 over the run, gate bias −3; batch 128 for the
    FC nets and 100 (the recipe's) for the conv nets."""
    hp = Hyperparams()
    assert (hp.activation, hp.lr, hp.momentum, hp.lr_decay, hp.gate_bias) == (
        "tanh", 0.1, 0.9, 0.7, -3.0)
    assert TrainConfig(model="highway").batch == 128
    assert TrainConfig(model="plain").batch == 128
    assert TrainConfig(model="mnist-highway-10").batch == 100
    assert TrainConfig(model="highway", batch_size=64).batch == 64


def test_absurd_lr_diverges_without_crashing(data: Dataset) -> None:
    config = TrainConfig(depth=4, epochs=4, batch_size=32, device="cpu")
    seen: list[int] = []
    (result,), params = train(config, [Hyperparams(lr=1e6, activation="relu")], data,
                              packed=False, on_epoch=lambda epoch, _: seen.append(epoch))
    assert result.diverged and result.diverged_epoch == 1
    assert result.epochs == [] and result.state_dict is None
    assert result.final is None and result.best_train_loss == math.inf
    assert seen == [1]  # the run stops once its only trial has diverged
    assert params > 0


def test_divergence_is_recorded_at_its_epoch(data: Dataset) -> None:
    """Poison the weights after epoch 2: epochs 1–2 stay recorded, epoch 3 is the divergence,
    and the weights kept are the best of epochs 1–2 (all finite)."""
    config = TrainConfig(depth=4, epochs=5, batch_size=32, device="cpu")
    hp = Hyperparams(lr=0.05, activation="relu", seed=5)
    clean = run(config, hp, data)
    engine, _ = build_engine(config, [hp], data, packed=False)
    assert isinstance(engine, SingleEngine)

    def poison(epoch: int, _: object) -> None:
        if epoch == 2:
            with torch.no_grad():
                engine.model.first.linear.weight[0, 0] = math.inf

    (result,) = fit(engine, data, [hp.seed], epochs=5, batch_size=32, on_epoch=poison)
    assert result.diverged_epoch == 3
    assert [e.epoch for e in result.epochs] == [1, 2]
    assert curve(result) == curve(clean)[:2]
    assert result.best_epoch in (1, 2) and result.state_dict is not None
    assert all(torch.isfinite(v).all() for v in result.state_dict.values())


# -- learning for real ------------------------------------------------------------------------

@pytest.mark.slow
def test_highway_20_learns_mnist(mnist_dir: Path) -> None:
    """20-layer highway net, 10k MNIST examples, 3 epochs (paper-style SGD): > 90% test."""
    config = TrainConfig(data_dir=str(mnist_dir), depth=20, epochs=3, batch_size=128,
                         limit_train=10_000, device="cpu")
    hp = Hyperparams(lr=0.1, momentum=0.9, lr_decay=0.9, activation="tanh", gate_bias=-3.0,
                     seed=0)
    data = load_data(config)
    (result,), params = train(config, [hp], data, packed=False)
    losses = curve(result)
    print(f"depth 20 highway: losses {losses}, test {result.test_accuracy}")
    assert params == 136_660
    assert not result.diverged and len(losses) == 3
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert result.test_accuracy is not None and result.test_accuracy > 0.90  # the last epoch's
    assert result.final is not None and result.final.train_accuracy > 0.85


# -- conv presets -----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "shape"), [("mnist-highway-10", (1, 28, 28)),
                                              ("cifar10-highway-19", (3, 32, 32))])
def test_conv_preset_trains_a_step(model: str, shape: tuple[int, ...]) -> None:
    tiny = synthetic(n=8, n_test=4, shape=shape, seed=2)
    config = TrainConfig(model=model, epochs=1, batch_size=8, device="cpu")
    hp = Hyperparams.for_model(model, seed=4)
    init = build_model(config, hp, tiny)
    assert isinstance(init, ConvHighwayNet)
    (result,), params = train(config, [hp], tiny)
    assert params == count_parameters(init)
    assert not result.diverged and len(result.epochs) == 1
    assert math.isfinite(result.epochs[0].train_loss)
    assert result.test_accuracy is not None
    assert result.state_dict is not None
    before = init.state_dict()
    assert set(result.state_dict) == set(before)
    changed = [k for k in before if not torch.equal(before[k], result.state_dict[k])]
    assert "classifier.weight" in changed and "layers.1.conv.weight" in changed  # 0: dropout
    with pytest.raises(ConfigError, match="shares one activation"):
        train(config, [hp, Hyperparams.for_model(model, activation="tanh", seed=5)], tiny,
              packed=True)


# -- the entry point --------------------------------------------------------------------------

def test_train_entry_point(data: Dataset) -> None:
    assert train(SMALL, [], data) == ([], 0)
    (one,), params = train(SMALL, [Hyperparams(seed=1)], data)  # packed=None: single
    assert params == count_parameters(build_model(SMALL, Hyperparams(seed=1), data))
    assert isinstance(build_model(SMALL, Hyperparams(), data), FCNet)
    with pytest.raises(ValueError, match="single engine"):
        train(SMALL, [Hyperparams(seed=1), Hyperparams(seed=2)], data, packed=False)
    with pytest.raises(ValueError, match="seeds"):
        engine, _ = build_engine(SMALL, [Hyperparams()], data, packed=False)
        fit(engine, data, [1, 2], epochs=1, batch_size=32)


def test_batch_larger_than_data(data: Dataset) -> None:
    config = TrainConfig(depth=2, epochs=2, batch_size=10_000, device="cpu")
    result = run(config, Hyperparams(seed=1), data)
    assert len(result.epochs) == 2 and all(math.isfinite(x) for x in curve(result))
