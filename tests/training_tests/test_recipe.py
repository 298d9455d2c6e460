"""The recipes: which model trains with which, what a conv trial's defaults are, and that the
engine applies the Caffe solver's rules (Nesterov, per-layer multipliers, multistep rate)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from hwsearch.training import Hyperparams, TrainConfig, family
from hwsearch.training.data import Dataset
from hwsearch.training.engines import SingleEngine
from hwsearch.training.loop import fit
from hwsearch.training.recipe import CAFFE_CIFAR, CAFFE_MNIST, SGD
from hwsearch.training.trainer import build_model

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _images(n: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + 8, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n + 8,), generator=g)
    return Dataset("mnist", x[:n], y[:n], x[n:], y[n:], 10)


def test_which_recipe() -> None:
    assert family("highway").recipe is SGD and family("plain").recipe is SGD
    assert family("mnist-highway-10").recipe is CAFFE_MNIST
    assert family("cifar10-highway-19").recipe is family("cifar100-highway-19").recipe is (
        CAFFE_CIFAR)
    # the solvers' figures
    assert (CAFFE_MNIST.lr, CAFFE_MNIST.momentum, CAFFE_MNIST.weight_decay) == (0.01, 0.9, 0.001)
    assert CAFFE_MNIST.milestones == (60_000, 120_000) and CAFFE_MNIST.iterations == 180_000
    assert CAFFE_CIFAR.lr == 0.025 and CAFFE_CIFAR.milestones == (100_000, 150_000, 175_000)
    assert CAFFE_MNIST.nesterov and not SGD.nesterov


def test_batch_and_spec_follow_the_recipe() -> None:
    fc, conv = TrainConfig(), TrainConfig(model="mnist-highway-10", width=32)
    assert (fc.batch, conv.batch) == (128, 100)
    assert fc.spec()["batch_size"] == 128 and "recipe" not in fc.spec()
    assert conv.spec()["batch_size"] == 100 and conv.spec()["recipe"] == "caffe-mnist"
    assert TrainConfig(model="mnist-highway-10", batch_size=50).batch == 50
    assert conv.depth == 10


def test_conv_trial_defaults_are_the_definitions() -> None:
    hp = Hyperparams.for_model("mnist-highway-10", seed=3)
    assert (hp.lr, hp.momentum, hp.weight_decay, hp.activation, hp.gate_bias, hp.seed) == (
        0.01, 0.9, 0.001, "relu", -1.0, 3)
    assert Hyperparams.for_model("cifar10-highway-19").gate_bias == -2.0
    assert Hyperparams.for_model("mnist-highway-10", lr=0.05).lr == 0.05
    assert Hyperparams.for_model("highway") == Hyperparams()


def test_one_step_follows_the_caffe_solver() -> None:
    """First step from zero momentum: Nesterov gives w ← w − lr·mult·(1+μ)·(g + decay·w), with
    mult 2 and no decay for biases, decay ×10 for the head's weights."""
    data = _images(100)
    config = TrainConfig(model="mnist-highway-10", device="cpu")
    hp = Hyperparams.for_model("mnist-highway-10", weight_decay=0.01)
    net = build_model(config, hp, data)
    for m in net.modules():  # no dropout, so the gradient below is the step's
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    before = {k: v.clone() for k, v in net.named_parameters()}
    loss = F.cross_entropy(net(data.x_train), data.y_train)
    grads = dict(zip([k for k, _ in net.named_parameters()],
                     torch.autograd.grad(loss, list(net.parameters())), strict=True))
    engine = SingleEngine(net, hp.lr, hp.momentum, hp.lr_decay, recipe=CAFFE_MNIST,
                          weight_decay=hp.weight_decay)
    engine.step(data.x_train[None], data.y_train[None], 0.0)
    lr, mu, wd = hp.lr, hp.momentum, hp.weight_decay
    for name, p in net.named_parameters():
        mult, decay = (2.0, 0.0) if name.endswith("bias") else (
            (1.0, 10 * wd) if name.startswith("classifier.") else (1.0, wd))
        g = grads[name] + decay * before[name]
        expected = before[name] - lr * mult * (1 + mu) * g
        torch.testing.assert_close(p.detach(), expected, rtol=1e-4, atol=1e-7,
                                   msg=lambda m, n=name: f"{n}: {m}")
    assert any(not torch.equal(p, before[k]) for k, p in net.named_parameters()
               if k.endswith("t.bias"))


def test_torch_nesterov_is_caffes_at_a_constant_rate() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 5, generator=g)
    target = torch.randn(5, generator=g)
    lr, mu = 0.05, 0.9
    w_torch = torch.zeros(5, requires_grad=True)
    opt = torch.optim.SGD([w_torch], lr=lr, momentum=mu, nesterov=True)
    w_caffe, v = torch.zeros(5), torch.zeros(5)
    for _ in range(20):
        opt.zero_grad()
        ((a @ w_torch - target) ** 2).sum().backward()
        opt.step()
        grad = 2 * a.T @ (a @ w_caffe - target)
        v_prev, v = v, mu * v + lr * grad
        w_caffe = w_caffe - ((1 + mu) * v - mu * v_prev)
    torch.testing.assert_close(w_torch.detach(), w_caffe, rtol=1e-5, atol=1e-6)


def test_multistep_schedule_counts_iterations() -> None:
    data = _images(40)
    config = TrainConfig(model="mnist-highway-10", width=4, device="cpu", eval_test=False)
    hp = Hyperparams.for_model("mnist-highway-10")
    recipe = replace(CAFFE_MNIST, milestones=(4, 8))  # 2 steps per epoch below
    engine = SingleEngine(build_model(config, hp, data), hp.lr, hp.momentum, hp.lr_decay,
                          recipe=recipe, weight_decay=hp.weight_decay)
    results = fit(engine, data, [0], epochs=5, batch_size=20)
    # epoch e ends at 0-based step 2e - 1: steps 0-3 at lr, 4-7 at lr/10, 8- at lr/100
    assert [r.lr for r in results[0].epochs] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0001], rel=1e-9)
    assert engine.optimizer.param_groups[1]["lr"] == pytest.approx(2 * 0.0001)
    assert math.isfinite(results[0].epochs[-1].train_loss)
