"""Convolutional highway nets exactly as the authors defined them.

Srivastava, Greff & Schmidhuber published their Caffe definitions with their code
(``flukeskywalker/highway-networks``, ``examples/highways/``). Each preset below is one of those
definitions, layer by layer, as a tuple of layer specs read top to bottom:

* ``mnist-highway-10``: the MNIST net of arXiv:1507.06228 Table 1 (one plain conv, eight
  highway convs, one linear layer). Its width is 16 (39K parameters) or 32 (151K, the width of
  the published definition).
* ``cifar10-highway-19`` / ``cifar100-highway-19``: the 19-layer CIFAR nets (three plain convs
  that widen 32 → 80 → 128, fourteen highway convs, a 1×1 conv, global average pooling, a
  linear layer). Both definitions end in a 100-way linear layer, the CIFAR-10 one too (its
  extra 90 outputs are never a target); we keep it, so the count is the authors' 2,265,928. The
  two differ only in how that layer is initialised.

What Caffe does that PyTorch does not by default, reproduced here:

* pooling rounds the output size up (``ceil_mode``): 24 → 12 → 6 → 3 on MNIST;
* its "xavier" filler is uniform in ±√(3 / fan_in), not Glorot's fan-average;
* its "gaussian" filler reads ``std`` only: the CIFAR stem's ``value: 0.05`` is ignored, so that
  conv starts with std 1 (the default), as it did for the authors.

This module is torch-free, so settings can name and check presets before torch is imported;
``conv.py`` builds the nets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .activations import check_activation
from .fc_config import MAX_WIDTH

XAVIER = None  # ``init_std`` of a layer that uses Caffe's xavier filler


@dataclass(frozen=True)
class Dropout:
    p: float


@dataclass(frozen=True)
class Conv:
    """A plain convolution followed by the activation (ReLU in every definition)."""

    out: int
    kernel: int = 3
    pad: int = 1
    init_std: float | None = XAVIER


@dataclass(frozen=True)
class Highway:
    """A highway conv at the current width: H and T are each a ``kernel``² conv, same padding."""

    kernel: int = 3


@dataclass(frozen=True)
class Pool:
    kernel: int
    stride: int
    mode: str = "max"  # or "avg"


@dataclass(frozen=True)
class Head:
    """Flatten, then a linear layer to ``out`` outputs."""

    out: int
    init_std: float | None = XAVIER


Layer = Dropout | Conv | Highway | Pool | Head


def _mnist(width: int) -> tuple[Layer, ...]:
    stage = (Highway(), Highway(), Highway())
    return (
        Dropout(0.2), Conv(width, kernel=5, pad=0),  # 28 → 24
        Highway(), Highway(), Pool(3, 2), Dropout(0.3),  # → 12
        *stage, Pool(3, 2), Dropout(0.4),  # → 6
        *stage, Pool(2, 2), Dropout(0.5),  # → 3
        Head(10, init_std=0.1),
    )


def _cifar(head_std: float | None) -> tuple[Layer, ...]:
    return (
        Dropout(0.2), Conv(32, init_std=1.0), *(Highway(),) * 4, Pool(2, 2), Dropout(0.2),  # 16
        Conv(80), *(Highway(),) * 5, Pool(2, 2), Dropout(0.2),  # 8
        Conv(128), *(Highway(),) * 5,
        Conv(100, kernel=1, pad=0), Pool(8, 8, "avg"), Dropout(0.2),  # 1×1
        Head(100, init_std=head_std),
    )


@dataclass(frozen=True)
class PresetInfo:
    """What a preset is: its input, its default width, its layers and the paper's words."""

    in_channels: int
    image_size: int
    default_width: int  # 0: the widths are fixed by the definition
    gate_bias: float  # the definition's transform-gate bias
    paper: str
    layers: Callable[[int], tuple[Layer, ...]]  # the layer list at a width (or the fixed one)


PRESETS: dict[str, PresetInfo] = {
    "mnist-highway-10": PresetInfo(1, 28, 16, -1.0, "MNIST, 10 layers: 39K (width 16), "
                                   "151K (width 32); 1507.06228 Table 1", _mnist),
    "cifar10-highway-19": PresetInfo(3, 32, 0, -2.0, "CIFAR-10, 19 layers, ~2.3M; "
                                     "1505.00387 Table 1 (Highway 2)",
                                     lambda width: _cifar(head_std=0.05)),
    "cifar100-highway-19": PresetInfo(3, 32, 0, -2.0, "CIFAR-100, 19 layers, ~2.3M",
                                      lambda width: _cifar(head_std=XAVIER)),
}


def preset_layers(name: str, width: int = 0) -> tuple[Layer, ...]:
    """The layer list of preset ``name``; ``width`` 0 is the preset's default."""
    info = _info(name)
    if width and not info.default_width:
        raise ValueError(f"preset {name!r} has the widths of its definition; width must be 0, "
                         f"got {width}")
    return info.layers(width or info.default_width)


def _info(name: str) -> PresetInfo:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class ConvConfig:
    """A preset at a width, with the hyperparameters that change the net itself."""

    preset: str = "mnist-highway-10"
    width: int = 0  # 0: the preset's
    num_classes: int = 10  # of the data; at most the head's outputs
    activation: str = "relu"
    gate_bias: float = -1.0
    carry_gate: bool = False
    dropout: bool = True  # False turns every dropout layer off (equivalence tests)

    def __post_init__(self) -> None:
        check_activation(self.activation)
        if not 0 <= self.width <= MAX_WIDTH:
            raise ValueError(f"width {self.width} out of range 0..{MAX_WIDTH}")
        head = self.layers[-1]
        assert isinstance(head, Head)
        if not 1 <= self.num_classes <= head.out:
            raise ValueError(f"preset {self.preset!r} has {head.out} outputs; the data has "
                             f"{self.num_classes} classes")

    @property
    def layers(self) -> tuple[Layer, ...]:
        return preset_layers(self.preset, self.width)

    @property
    def info(self) -> PresetInfo:
        return _info(self.preset)

    @property
    def depth(self) -> int:
        """Layers with weights, as the papers count them (convolutions and the linear head)."""
        return sum(isinstance(x, Conv | Highway | Head) for x in self.layers)


def walk(name: str, width: int = 0) -> Iterator[tuple[Layer, int, int]]:
    """Each layer of preset ``name`` with the channels and image size it receives, by Caffe's
    arithmetic: a conv's output is ``size + 2·pad − kernel + 1``, a pool's rounds up."""
    info = _info(name)
    channels, size = info.in_channels, info.image_size
    for layer in preset_layers(name, width):
        yield layer, channels, size
        if isinstance(layer, Conv):
            channels, size = layer.out, size + 2 * layer.pad - layer.kernel + 1
        elif isinstance(layer, Pool):
            size = math.ceil((size - layer.kernel) / layer.stride) + 1


def parameter_count(name: str, width: int = 0) -> int:
    """A preset's parameters from its layer list, without building it (for reports)."""
    total = 0
    for layer, channels, size in walk(name, width):
        if isinstance(layer, Conv):
            total += layer.kernel**2 * channels * layer.out + layer.out
        elif isinstance(layer, Highway):
            total += 2 * (layer.kernel**2 * channels**2 + channels)
        elif isinstance(layer, Head):
            total += channels * size * size * layer.out + layer.out
    return total


def forward_flops(name: str, width: int = 0) -> int:
    """Multiply-add FLOPs of one image's forward pass (convolutions and the head), from the
    layer list: what a trial of the preset costs beside another, for ordering work."""
    total = 0
    for layer, channels, size in walk(name, width):
        if isinstance(layer, Conv):
            out_size = size + 2 * layer.pad - layer.kernel + 1
            total += 2 * layer.kernel**2 * channels * layer.out * out_size**2
        elif isinstance(layer, Highway):
            total += 2 * 2 * layer.kernel**2 * channels**2 * size**2
        elif isinstance(layer, Head):
            total += 2 * channels * size * size * layer.out
    return total


def preset(name: str, **overrides: object) -> ConvConfig:
    _info(name)
    return ConvConfig(preset=name, **overrides)  # type: ignore[arg-type]


