"""The hand-written pack step and the shared-input evaluation against the eager reference:
each trial's own :class:`FCNet` with autograd and ``torch.optim.SGD``, on the same weights and
batches.

Tolerance. In float64 the two differ only in how matmuls and sums are ordered (a few ulps per
op, ~1e-16 relative): 1e-10 relative on losses, gradients and weights after several steps
leaves six orders of headroom and still catches any real difference (a wrong derivative,
learning rate or momentum moves them by 1e-4 or more). Float32 runs are held to 1e-5.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hwsearch.models import FCConfig
from hwsearch.models.fc import FCNet
from hwsearch.models.packed import PackedFCNet, tanh_from_sigmoid_
from hwsearch.training.engines import PackedEngine
from hwsearch.training.fc_step import activation_runs, inplace_activation

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# Every activation, in runs (two tanh trials side by side), each trial its own lr and momentum
# (0 among them: no momentum at all).
ACTIVATIONS = ("relu", "tanh", "tanh", "sigmoid")
LRS = (0.05, 0.02, 0.1, 0.3)
MOMENTA = (0.9, 0.0, 0.5, 0.95)
DECAYS = (0.9, 0.5, 1.0, 0.2)


def nets(kind: str, dtype: torch.dtype, depth: int = 4) -> list[FCNet]:
    out = []
    for i, act in enumerate(ACTIVATIONS):
        config = FCConfig(kind=kind, depth=depth, width=6, activation=act, gate_bias=-1.0 - i,
                          in_features=20, num_classes=5)
        out.append(FCNet(config, torch.Generator().manual_seed(i)).to(dtype))
    return out


def pack_engine(singles: list[FCNet]) -> PackedEngine:
    pack = PackedFCNet.from_state_dicts(singles[0].config, [n.state_dict() for n in singles],
                                        ACTIVATIONS)
    return PackedEngine(pack, LRS, MOMENTA, DECAYS)


def batches(dtype: torch.dtype, steps: int, batch: int = 7) -> list[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(3)
    k = len(ACTIVATIONS)
    return [(torch.rand(k, batch, 20, generator=gen, dtype=dtype),
             torch.randint(0, 5, (k, batch), generator=gen)) for _ in range(steps)]


def assert_close(a: torch.Tensor, b: torch.Tensor, rel: float) -> None:
    scale = b.abs().max().item() or 1.0
    assert (a - b).abs().max().item() <= rel * scale


def test_activation_runs() -> None:
    assert activation_runs(["relu", "tanh", "tanh", "relu"]) == [
        ("relu", slice(0, 1)), ("tanh", slice(1, 3)), ("relu", slice(3, 4))]


@pytest.mark.parametrize("kind", ["highway", "plain"])
def test_first_step_losses_and_gradients_equal_autograd(kind: str) -> None:
    """After one step from zero momentum the buffers hold exactly the gradients: compare them
    with each net's own ``backward()``."""
    singles = nets(kind, torch.float64)
    engine = pack_engine(singles)
    (x, y), = batches(torch.float64, 1)
    losses, correct = engine.step(x, y, 0.0)
    for i, net in enumerate(singles):
        logits = net(x[i])
        loss = F.cross_entropy(logits, y[i])
        loss.backward()
        assert losses[i].item() == pytest.approx(loss.item(), rel=1e-12)
        assert correct[i].item() == (logits.argmax(1) == y[i]).sum().item()
        grads = engine.pack.trial_state_dict(i, engine.bufs)
        for name, p in net.named_parameters():
            assert p.grad is not None
            assert_close(grads[name], p.grad, 1e-12)


@pytest.mark.parametrize("kind", ["highway", "plain"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_steps_equal_torch_sgd(kind: str, dtype: torch.dtype) -> None:
    """Ten steps with a decaying rate: every trial's losses and weights are those of its own
    net under ``torch.optim.SGD`` at ``lr0 · decay**exponent``."""
    rel = 1e-10 if dtype == torch.float64 else 1e-5
    singles = nets(kind, dtype)
    engine = pack_engine(singles)
    optimizers = [torch.optim.SGD(n.parameters(), lr=lr, momentum=mu)
                  for n, lr, mu in zip(singles, LRS, MOMENTA, strict=True)]
    steps = batches(dtype, 10)
    for s, (x, y) in enumerate(steps):
        exponent = s / len(steps)
        losses, _ = engine.step(x, y, exponent)
        for i, (net, opt) in enumerate(zip(singles, optimizers, strict=True)):
            for group in opt.param_groups:
                group["lr"] = engine.lr(exponent)[i].item()
            loss = F.cross_entropy(net(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert losses[i].item() == pytest.approx(loss.item(), rel=rel)
    for i, net in enumerate(singles):
        packed = engine.pack.trial_state_dict(i)
        for name, value in net.state_dict().items():
            assert_close(packed[name], value, rel)


def test_a_frozen_trial_stays_put_and_others_go_on() -> None:
    singles = nets("highway", torch.float64)
    engine = pack_engine(singles)
    steps = batches(torch.float64, 3)
    engine.step(*steps[0], 0.0)
    engine.freeze(2)
    for x, y in steps[1:]:
        engine.step(x, y, 0.5)
    frozen = engine.pack.trial_state_dict(2)
    assert all((v == 0).all() for v in frozen.values())
    assert all(torch.isfinite(p).all() for p in engine.pack.parameters())


@pytest.mark.parametrize(("dtype", "bound"), [(torch.float32, 2.5e-7), (torch.float64, 1e-15)])
def test_evaluation_tanh_is_tanh_to_rounding(dtype: torch.dtype, bound: float) -> None:
    """The evaluation's tanh (through sigmoid) is torch's to a few units of the last place,
    over the whole range, saturation and signs included."""
    z = torch.cat([torch.linspace(-30, 30, 200_001, dtype=dtype),
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e4, -1e4], dtype=dtype)])
    want = torch.tanh(z.double())
    got = tanh_from_sigmoid_(z.clone())
    assert (got.double() - want).abs().max().item() <= bound
    assert got[-4:].tolist() == [0.0, 0.0, 1.0, -1.0]


def test_cpu_training_takes_tanh_through_sigmoid_and_a_gpu_takes_torchs() -> None:
    """On the CPU torch's tanh costs seven sigmoids, so the step takes the sigmoid form (the
    comparisons above hold it to the reference); on a GPU (here its stand-in device, meta)
    tanh is one kernel against four, and stays torch's. Other activations are torch's."""
    cpu, gpu = torch.device("cpu"), torch.device("meta")
    assert inplace_activation("tanh", cpu) is tanh_from_sigmoid_
    assert inplace_activation("tanh", gpu) is torch.tanh_
    assert inplace_activation("relu", cpu) is torch.relu_
    assert inplace_activation("sigmoid", cpu) is torch.sigmoid_


@pytest.mark.parametrize("kind", ["highway", "plain"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("chunk", [5, 512])
def test_evaluation_equals_each_net_on_its_own(kind: str, dtype: torch.dtype, chunk: int) -> None:
    """The objective (mean cross-entropy over a shared set) and the accuracy of every trial,
    in chunks that do and do not divide the set, as each net computes them in eval mode."""
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    singles = nets(kind, dtype)
    engine = pack_engine(singles)
    for x, y in batches(dtype, 3):  # trained a little, so the trials differ more
        engine.step(x, y, 0.0)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(23, 20, generator=gen, dtype=dtype)
    y = torch.randint(0, 5, (23,), generator=gen)
    loss, accuracy = engine.evaluate(x, y, chunk=chunk)
    for i, config_net in enumerate(singles):
        net = FCNet(config_net.config).to(dtype)
        net.load_state_dict(engine.pack.trial_state_dict(i))
        net.eval()
        with torch.no_grad():
            logits = net(x)
        want = F.cross_entropy(logits.double(), y).item()
        assert loss[i].item() == pytest.approx(want, rel=rel)
        assert accuracy[i].item() == (logits.argmax(1) == y).double().mean().item()
