"""Highway layers and nets: the gate algebra, gradients, sizes, depth, lesions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from hwsearch.models import ACTIVATIONS, KINDS, MAX_DEPTH, FCConfig, get_activation
from hwsearch.models.fc import FCNet, count_parameters
from hwsearch.models.highway import HighwayConv2d, HighwayLinear

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _linear_layer(activation: str, carry_gate: bool, width: int = 6) -> HighwayLinear:
    torch.manual_seed(0)
    # gate bias 0 so that T is far from 0 and 1 and both paths matter
    return HighwayLinear(width, activation, gate_bias=0.0, carry_gate=carry_gate).double()


def _conv_layer(activation: str, carry_gate: bool, channels: int = 2) -> HighwayConv2d:
    torch.manual_seed(0)
    return HighwayConv2d(channels, 3, activation, gate_bias=0.0, carry_gate=carry_gate).double()


LAYERS = {
    "linear": (_linear_layer, (5, 6)),
    "conv": (_conv_layer, (2, 2, 5, 5)),
}


# -- the gate algebra -------------------------------------------------------------------------

@pytest.mark.parametrize("carry_gate", [False, True])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gate_forced_to_zero_is_identity(kind: str, activation: str, carry_gate: bool) -> None:
    make, shape = LAYERS[kind]
    layer = make(activation, carry_gate)
    x = torch.randn(shape, generator=_gen(1), dtype=torch.float64)
    out = layer.forward_full(x, force_gate=0.0)
    assert torch.equal(out.y, x)  # x + 0·(H − x) and H·0 + x·1 are exactly x
    assert torch.equal(layer(x, force_gate=0.0), x)
    assert torch.all(out.gate == 0.0)
    # without forcing, the layer is not the identity (otherwise the test above proves nothing)
    assert not torch.allclose(layer(x), x)


@pytest.mark.parametrize("carry_gate", [False, True])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gate_forced_to_one_is_the_block(kind: str, activation: str, carry_gate: bool) -> None:
    make, shape = LAYERS[kind]
    layer = make(activation, carry_gate)
    x = torch.randn(shape, generator=_gen(2), dtype=torch.float64)
    h = get_activation(activation)(layer.h(x))
    out = layer.forward_full(x, force_gate=1.0)
    # x + 1·(H − x) is H up to one rounding; H·1 + x·0 is exactly H
    torch.testing.assert_close(out.y, h, rtol=0, atol=1e-14)
    torch.testing.assert_close(out.block, h, rtol=0, atol=0)
    assert torch.all(out.gate == 1.0)
    assert not torch.allclose(layer(x), h)


@pytest.mark.parametrize("carry_gate", [False, True])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_unforced_layer_follows_the_formula(kind: str, carry_gate: bool) -> None:
    make, shape = LAYERS[kind]
    layer = make("tanh", carry_gate)
    x = torch.randn(shape, generator=_gen(3), dtype=torch.float64)
    h = torch.tanh(layer.h(x))
    t = torch.sigmoid(layer.t(x))
    c = torch.sigmoid(layer.c(x)) if carry_gate else 1 - t
    out = layer.forward_full(x)
    torch.testing.assert_close(out.y, h * t + x * c, rtol=0, atol=1e-14)
    torch.testing.assert_close(out.gate, t, rtol=0, atol=0)


def test_gate_bias_initialisation() -> None:
    layer = HighwayLinear(8, gate_bias=-3.0, carry_gate=True)
    assert torch.all(layer.t.bias == -3.0)
    assert torch.all(layer.c.bias == 3.0)  # C ≈ 1 − T at the start
    conv = HighwayConv2d(4, gate_bias=-1.5)
    assert torch.all(conv.t.bias == -1.5) and conv.c is None


@pytest.mark.parametrize("carry_gate", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_gradcheck(kind: str, activation: str, carry_gate: bool) -> None:
    """Gradients with respect to the input and every parameter, float64, small sizes."""
    make, shape = LAYERS[kind]
    layer = make(activation, carry_gate)
    names = [n for n, _ in layer.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in layer.named_parameters())
    x = torch.randn(shape, generator=_gen(4), dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor, *ps: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, dict(zip(names, ps, strict=True)), (x,))

    assert len(params) == (6 if carry_gate else 4)
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-4)


# -- sizes ------------------------------------------------------------------------------------

def test_layer_parameter_counts() -> None:
    assert {name: kind.width for name, kind in KINDS.items()} == {"highway": 50, "plain": 71}
    assert count_parameters(HighwayLinear(50)) == 5_100
    plain = FCNet(FCConfig(kind="plain", depth=2))
    assert count_parameters(plain.layers[0]) == 5_112
    highway = FCNet(FCConfig(kind="highway", depth=2))
    assert count_parameters(highway.layers[0]) == 5_100
    assert count_parameters(HighwayLinear(50, carry_gate=True)) == 7_650


def _expected_total(kind: str, depth: int) -> int:
    w = KINDS[kind].width
    first = 784 * w + w
    per_layer = 2 * (w * w + w) if kind == "highway" else w * w + w
    classifier = w * 10 + 10
    return first + (depth - 1) * per_layer + classifier


# Reported sizes of the Figure-1 nets (first layer + depth−1 hidden layers + softmax).
TOTALS = {
    ("highway", 10): 85_660, ("highway", 20): 136_660,
    ("highway", 50): 289_660, ("highway", 100): 544_660,
    ("plain", 10): 102_463, ("plain", 20): 153_583,
    ("plain", 50): 306_943, ("plain", 100): 562_543,
}


@pytest.mark.parametrize(("kind", "depth"), sorted(TOTALS))
def test_net_parameter_totals(kind: str, depth: int) -> None:
    net = FCNet(FCConfig(kind=kind, depth=depth))
    total = count_parameters(net)
    print(f"{kind} depth {depth}: {total:,} parameters")
    assert total == _expected_total(kind, depth) == TOTALS[kind, depth]
    assert len(net.layers) == depth - 1


# -- depth ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_depth_1000_forward_backward() -> None:
    net = FCNet(FCConfig(kind="highway", depth=MAX_DEPTH), _gen(0))
    x = torch.rand(2, 1, 28, 28, generator=_gen(1))
    loss = F.cross_entropy(net(x), torch.tensor([3, 7]))
    loss.backward()
    assert len(net.layers) == 999
    assert torch.isfinite(loss)
    grad = net.first.linear.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert count_parameters(net) == _expected_total("highway", MAX_DEPTH)
    assert len(net.state_dict()) == 2 + 4 * 999 + 2


def test_gradient_reaches_first_layer_of_deep_highway_net_only() -> None:
    """The paper's mechanism: at initialisation (gate bias −3, depth 100) the gradient at the
    first layer of a highway net is orders of magnitude larger than in a plain sigmoid net.
    float64 so that the plain net's vanishing gradient is measurable instead of exactly 0."""
    x = torch.rand(64, 784, generator=_gen(5), dtype=torch.float64)
    y = torch.randint(0, 10, (64,), generator=_gen(6))
    norms = {}
    for kind in ("highway", "plain"):
        config = FCConfig(kind=kind, depth=100, activation="sigmoid", gate_bias=-3.0)
        net = FCNet(config, _gen(7)).double()
        F.cross_entropy(net(x), y).backward()
        norms[kind] = net.first.linear.weight.grad.norm().item()
        # the classifier gets a normal-sized gradient in both nets: only depth makes it vanish
        assert net.classifier.weight.grad.norm().item() > 1e-2
    print(f"first-layer gradient norms: {norms}")
    assert norms["plain"] > 0
    assert norms["highway"] > 1e-4
    assert norms["highway"] >= 1e3 * norms["plain"]


# -- lesions and internals --------------------------------------------------------------------

@pytest.fixture(scope="module")
def net10() -> FCNet:
    return FCNet(FCConfig(kind="highway", depth=10, activation="tanh", gate_bias=-1.0), _gen(8))


@pytest.mark.parametrize("lesioned", [0, 4, 8])
def test_lesion_forces_the_gate_shut(net10: FCNet, lesioned: int) -> None:
    x = torch.rand(16, 1, 28, 28, generator=_gen(9))
    with torch.no_grad():
        h = net10.first(x.flatten(1))
        skipped = h
        for i, layer in enumerate(net10.layers):
            h = layer.forward_full(h, force_gate=0.0 if i == lesioned else None).y
            if i != lesioned:
                skipped = layer(skipped)
        manual = net10.classifier(h)
        without_layer = net10.classifier(skipped)
        lesioned_out = net10(x, lesion={lesioned})
        intact = net10(x)
    assert torch.equal(lesioned_out, manual)
    assert torch.equal(lesioned_out, without_layer)  # a shut gate is an exact identity
    assert (lesioned_out - intact).abs().max() > 1e-4
    assert torch.equal(net10(x, lesion=()), intact)


def test_lesion_of_several_layers(net10: FCNet) -> None:
    x = torch.rand(4, 784, generator=_gen(10))
    with torch.no_grad():
        one, two = net10(x, lesion={2}), net10(x, lesion={2, 5})
    assert not torch.allclose(one, two)


def test_internals(net10: FCNet) -> None:
    x = torch.rand(12, 1, 28, 28, generator=_gen(11))
    gates, blocks, outputs = net10.internals(x)
    assert gates.shape == blocks.shape == outputs.shape == (9, 12, 50)
    with torch.no_grad():  # the block output is what the layer passes on, and what the net uses
        torch.testing.assert_close(net10.classifier(outputs[-1]), net10(x))
    assert (gates > 0).all() and (gates < 1).all()
    assert (blocks.abs() <= 1).all()  # tanh
    # consistent with the forward pass: the first layer's gate is σ(t(first(x)))
    with torch.no_grad():
        h0 = net10.first(x.flatten(1))
        torch.testing.assert_close(gates[0], torch.sigmoid(net10.layers[0].t(h0)))
    # gate bias −1 at init: mean gate near σ(−1) ≈ 0.27, far from 0.5
    assert 0.1 < gates.mean().item() < 0.45


def test_internals_rejects_plain_net() -> None:
    with pytest.raises(ValueError, match="highway"):
        FCNet(FCConfig(kind="plain", depth=3)).internals(torch.rand(2, 784))


def test_generator_makes_init_reproducible() -> None:
    a = FCNet(FCConfig(depth=5), _gen(3)).state_dict()
    b = FCNet(FCConfig(depth=5), _gen(3)).state_dict()
    c = FCNet(FCConfig(depth=5), _gen(4)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["first.linear.weight"], c["first.linear.weight"])
    assert torch.all(a["layers.0.t.bias"] == -2.0) and torch.all(a["layers.0.h.bias"] == 0.0)


# -- FCConfig validation ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"depth": 0}, "depth 0"),
        ({"depth": 1001}, "depth 1001"),
        ({"depth": -5}, "depth -5"),
        ({"kind": "resnet"}, "'resnet'"),
        ({"activation": "gelu"}, "'gelu'"),
        ({"width": -1}, "width -1"),
    ],
)
def test_fc_config_rejects(changes: dict, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        FCConfig(**changes)
    assert needle in str(info.value)
    assert "allowed" in str(info.value) or "width" in needle


def test_fc_config_widths() -> None:
    assert FCConfig(kind="highway").width == 50
    assert FCConfig(kind="plain").width == 71
    assert FCConfig(kind="plain", width=30).width == 30
    assert FCConfig(depth=1).depth == 1 and FCConfig(depth=1000).depth == 1000
    assert FCConfig().with_(kind="plain", width=0).width == 71
    one = FCNet(FCConfig(depth=1))
    assert len(one.layers) == 0 and one(torch.rand(2, 784)).shape == (2, 10)
