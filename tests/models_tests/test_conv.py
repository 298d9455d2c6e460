"""The conv presets against the authors' Caffe definitions: parameter counts derived from the
layer lists (and the figures the definitions' own logs print), Caffe's pooling arithmetic,
initialisation, forward and backward shapes."""

from __future__ import annotations

import math

import pytest
import torch

from hwsearch.models import parameter_count, preset
from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.fc import count_parameters
from hwsearch.models.highway import HighwayConv2d
from hwsearch.models.presets import Conv, Dropout, Head, Highway, Pool, preset_layers

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def count_from_layers(layers: tuple, channels: int, size: int) -> int:
    """A net's parameters from its layer list, the way Caffe's log adds them up: a conv has
    k²·in·out weights and out biases; a highway conv two such convs at constant width; the
    linear head sees the last feature map flattened. Pooling rounds its output size up."""
    total = 0
    for layer in layers:
        if isinstance(layer, Conv):
            total += layer.kernel**2 * channels * layer.out + layer.out
            channels, size = layer.out, size + 2 * layer.pad - layer.kernel + 1
        elif isinstance(layer, Highway):
            total += 2 * (layer.kernel**2 * channels * channels + channels)
        elif isinstance(layer, Pool):
            size = math.ceil((size - layer.kernel) / layer.stride) + 1
        elif isinstance(layer, Head):
            total += channels * size * size * layer.out + layer.out
        else:
            assert isinstance(layer, Dropout)
    return total


@pytest.mark.parametrize(
    ("name", "width", "channels", "expected"),
    [
        ("mnist-highway-10", 0, 1, 38_986),  # width 16; 1507.06228 Table 1: 39K
        ("mnist-highway-10", 32, 1, 151_690),  # the definition's width; its log: 151K
        ("cifar10-highway-19", 0, 3, 2_265_928),  # 1505.00387 Table 1: ~2.3M
        ("cifar100-highway-19", 0, 3, 2_265_928),
    ],
)
def test_parameter_count_is_the_definitions(
    name: str, width: int, channels: int, expected: int
) -> None:
    config = preset(name, width=width)
    derived = count_from_layers(config.layers, channels, config.info.image_size)
    net = ConvHighwayNet(config, _gen(0))
    print(f"{name} width {width or config.info.default_width}: {count_parameters(net):,}")
    assert count_parameters(net) == derived == parameter_count(name, width) == expected


def test_layer_lists_follow_the_definitions() -> None:
    mnist = preset_layers("mnist-highway-10")
    assert [type(x).__name__ for x in mnist] == [
        "Dropout", "Conv", "Highway", "Highway", "Pool", "Dropout",
        "Highway", "Highway", "Highway", "Pool", "Dropout",
        "Highway", "Highway", "Highway", "Pool", "Dropout", "Head",
    ]
    assert [x.p for x in mnist if isinstance(x, Dropout)] == [0.2, 0.3, 0.4, 0.5]
    assert [(x.kernel, x.stride) for x in mnist if isinstance(x, Pool)] == [(3, 2), (3, 2),
                                                                            (2, 2)]
    cifar = preset_layers("cifar10-highway-19")
    assert [x.out for x in cifar if isinstance(x, Conv)] == [32, 80, 128, 100]
    assert sum(isinstance(x, Highway) for x in cifar) == 14  # 4 + 5 + 5
    assert preset("mnist-highway-10").depth == 10
    assert preset("cifar100-highway-19").depth == 19
    # The Caffe log of the CIFAR-10 net prints 896 for the stem and 18,496 per 32-wide
    # highway layer.
    net = ConvHighwayNet(preset("cifar10-highway-19"), _gen(0))
    assert count_parameters(net.layers[1]) == 896 and count_parameters(net.layers[2]) == 18_496


def test_pooling_rounds_up_as_caffe_does() -> None:
    net = ConvHighwayNet(preset("mnist-highway-10", dropout=False), _gen(0)).eval()
    x = torch.rand(2, 1, 28, 28, generator=_gen(1))
    sizes = []
    for layer in net.layers:
        x = layer(x)
        if isinstance(layer, torch.nn.MaxPool2d | HighwayConv2d) or layer is net.layers[1]:
            sizes.append(x.shape[-1])
    # conv 5×5: 24; two highway; pool 3/2: 12 (floor would give 11); ...; pool 2/2: 3
    assert sizes == [24, 24, 24, 12, 12, 12, 12, 6, 6, 6, 6, 3]


@pytest.mark.parametrize(("name", "shape", "outputs"),
                         [("mnist-highway-10", (1, 28, 28), 10),
                          ("cifar10-highway-19", (3, 32, 32), 100),
                          ("cifar100-highway-19", (3, 32, 32), 100)])
def test_forward_and_backward(name: str, shape: tuple[int, ...], outputs: int) -> None:
    net = ConvHighwayNet(preset(name), _gen(0))
    x = torch.rand(4, *shape, generator=_gen(1))
    out = net(x)
    assert out.shape == (4, outputs) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads if g is not None)


def test_initialisation_is_caffes() -> None:
    net = ConvHighwayNet(preset("mnist-highway-10", width=32, gate_bias=-1.0), _gen(0))
    sd = net.state_dict()
    highway = [k for k in sd if k.endswith(".t.bias")]
    assert len(highway) == 8 and all(torch.all(sd[k] == -1.0) for k in highway)
    assert all(torch.all(sd[k] == 0) for k in sd if k.endswith(".h.bias"))
    # xavier: uniform within ±√(3/fan_in), fan_in = 32·3·3, with the spread of a uniform
    w = sd["layers.2.h.weight"]
    bound = math.sqrt(3 / (32 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound
    # the head: gaussian, std 0.1
    assert abs(sd["classifier.weight"].std().item() - 0.1) < 0.01
    # the same seed gives the same net; another seed another
    again = ConvHighwayNet(preset("mnist-highway-10", width=32), _gen(0)).state_dict()
    other = ConvHighwayNet(preset("mnist-highway-10", width=32), _gen(1)).state_dict()
    assert all(torch.equal(sd[k], again[k]) for k in sd)
    assert not torch.equal(sd["layers.2.h.weight"], other["layers.2.h.weight"])


def test_preset_validation() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        preset("nope")
    with pytest.raises(ValueError, match="'gelu'"):
        preset("mnist-highway-10", activation="gelu")
    with pytest.raises(ValueError, match="width must be 0"):
        preset("cifar10-highway-19", width=64)
    with pytest.raises(ValueError, match="10 outputs; the data has 100 classes"):
        preset("mnist-highway-10", num_classes=100)
