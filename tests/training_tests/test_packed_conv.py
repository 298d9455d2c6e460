"""Packs of conv trials: the same numbers as K single runs, own dropout masks, convertible weights.

Tolerance. As for the FC packs (test_packed.py) everything runs in float64 on the CPU with the
same seeds, data order and update rule; a grouped convolution sums in another order than K
separate ones, worth ~1e-16 relative per op. 1e-8 relative over ~30 steps leaves orders of
magnitude of headroom while any real difference (a trial's rate, momentum, decay, multiplier,
milestone or data order) moves the first epoch's loss by 1e-4 or more. Dropout is switched off
for the comparison (a pack draws its masks in one call, a single run in its own); that each
trial gets its own masks is tested apart.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from hwsearch.models import preset
from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.fc import count_parameters
from hwsearch.models.packed_conv import PackedConvNet
from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.conv_engine import PackedConvEngine
from hwsearch.training.data import Dataset
from hwsearch.training.engines import SingleEngine
from hwsearch.training.loop import TrialResult, fit, init_generator
from hwsearch.training.recipe import CAFFE_MNIST
from hwsearch.training.trainer import train

pytestmark = pytest.mark.usefixtures("torch_one_thread")

REL = 1e-8
RECIPE = replace(CAFFE_MNIST, milestones=(10, 20))  # 10 steps per epoch: both milestones hit
TRIALS = [  # everything differs per trial
    Hyperparams.for_model("mnist-highway-10", lr=0.05, momentum=0.9, weight_decay=0.001,
                          gate_bias=-1.0, seed=1),
    Hyperparams.for_model("mnist-highway-10", lr=0.02, momentum=0.5, weight_decay=0.01,
                          gate_bias=-2.0, seed=2),
    Hyperparams.for_model("mnist-highway-10", lr=0.1, momentum=0.0, weight_decay=0.0,
                          gate_bias=0.0, seed=3),
]


def _data(n: int = 200, n_test: int = 40) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n + n_test, 1, 28, 28, generator=g, dtype=torch.float64)
    proj = torch.randn(28 * 28, 10, generator=g, dtype=torch.float64)
    y = (x.flatten(1) @ proj).argmax(1)
    return Dataset("mnist", x[:n], y[:n], x[n:], y[n:], 10)


def _net(hp: Hyperparams, dropout: bool = False) -> ConvHighwayNet:
    config = preset("mnist-highway-10", width=4, gate_bias=hp.gate_bias, dropout=dropout)
    return ConvHighwayNet(config, init_generator(hp.seed)).double()


def _fit(engine, data: Dataset, seeds: list[int]) -> list[TrialResult]:  # noqa: ANN001
    return fit(engine, data, seeds, epochs=3, batch_size=20)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def test_pack_equals_single_runs() -> None:
    data = _data()
    singles = []
    for hp in TRIALS:
        engine = SingleEngine(_net(hp), hp.lr, hp.momentum, hp.lr_decay, recipe=RECIPE,
                              weight_decay=hp.weight_decay)
        singles.append(_fit(engine, data, [hp.seed])[0])
    nets = [_net(hp) for hp in TRIALS]
    pack = PackedConvNet.from_state_dicts(nets[0].config, [n.state_dict() for n in nets])
    engine = PackedConvEngine(pack, RECIPE, [hp.lr for hp in TRIALS],
                              [hp.momentum for hp in TRIALS],
                              [hp.weight_decay for hp in TRIALS],
                              [hp.lr_decay for hp in TRIALS])
    packed = _fit(engine, data, [hp.seed for hp in TRIALS])
    for p, s in zip(packed, singles, strict=True):
        assert len(p.epochs) == len(s.epochs) == 3
        for pe, se in zip(p.epochs, s.epochs, strict=True):
            assert _close(pe.train_loss, se.train_loss), (pe, se)
            assert _close(pe.running_loss, se.running_loss)
            assert pe.test_accuracy == se.test_accuracy and _close(pe.lr, se.lr)
        assert p.best_epoch == s.best_epoch and p.test_accuracy == s.test_accuracy
        assert p.state_dict is not None and s.state_dict is not None
        for key, value in s.state_dict.items():
            torch.testing.assert_close(p.state_dict[key], value, rtol=REL, atol=1e-12)
    # the trials really differ, and the schedule stepped: lr/100 in the third epoch
    assert len({round(s.epochs[0].train_loss, 6) for s in singles}) == 3
    assert packed[0].epochs[2].lr == pytest.approx(0.05 / 100)


def test_each_trial_draws_its_own_dropout_masks() -> None:
    hp = TRIALS[0]
    net = _net(hp, dropout=True)
    pack = PackedConvNet.from_state_dicts(net.config, [net.state_dict()] * 2)
    x = torch.rand(1, 4, 1, 28, 28, dtype=torch.float64).expand(2, -1, -1, -1, -1)
    torch.manual_seed(0)
    train_out = pack.train()(x)
    assert not torch.allclose(train_out[0], train_out[1])  # same weights, same input
    eval_out = pack.eval()(x)
    torch.testing.assert_close(eval_out[0], eval_out[1], rtol=0, atol=0)
    torch.testing.assert_close(eval_out[0], net.eval()(x[0]))


def test_the_trainer_packs_conv_trials() -> None:
    data = _data(100, 20).to(torch.device("cpu"), torch.float32)
    config = TrainConfig(model="mnist-highway-10", width=4, epochs=1, batch_size=50,
                         device="cpu")
    results, params = train(config, TRIALS[:2], data)
    assert params == count_parameters(_net(TRIALS[0]))
    assert [len(r.epochs) for r in results] == [1, 1]
    assert results[0].epochs[0].train_loss != results[1].epochs[0].train_loss
    weights = results[1].state_dict
    assert weights is not None and set(weights) == set(_net(TRIALS[1]).state_dict())
