"""Convolutional highway nets exactly as the authors defined them: the modules that build a
preset's layer list (``presets.py``) and Caffe's initialisation."""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import get_activation
from .highway import HighwayConv2d
from .presets import (
    XAVIER,
    Conv,
    ConvConfig,
    Dropout,
    Head,
    Highway,
    Pool,
    walk,
)


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, spec: Conv, activation: str) -> None:
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv2d(c_in, spec.out, spec.kernel, padding=spec.pad)
        self._act = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.conv(x))


def _pool(spec: Pool) -> nn.Module:
    if spec.mode == "avg":
        return nn.AvgPool2d(spec.kernel, spec.stride, ceil_mode=True)
    return nn.MaxPool2d(spec.kernel, spec.stride, ceil_mode=True)


class ConvHighwayNet(nn.Module):
    """Input (B, C, H, W) → logits (B, head outputs)."""

    def __init__(self, config: ConvConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        for spec, width, size in walk(config.preset, config.width):
            if isinstance(spec, Dropout):
                layers.append(nn.Dropout(spec.p if config.dropout else 0.0))
            elif isinstance(spec, Conv):
                layers.append(ConvBlock(width, spec, config.activation))
            elif isinstance(spec, Highway):
                layers.append(HighwayConv2d(width, spec.kernel, config.activation,
                                            config.gate_bias, config.carry_gate))
            elif isinstance(spec, Pool):
                layers.append(_pool(spec))
            else:  # the head, last
                assert isinstance(spec, Head)
                head = nn.Linear(width * size * size, spec.out)
        self.layers = nn.ModuleList(layers)  # registered before the head, as the init expects
        self.classifier = head
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        caffe_init_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:  # x: (B, C, H, W)
            x = layer(x)
        return self.classifier(x.flatten(1))  # (B, outputs)


@torch.no_grad()
def caffe_fill_(weight: torch.Tensor, std: float | None,
                generator: torch.Generator | None = None) -> None:
    """Caffe's fillers: "gaussian" N(0, std²), or "xavier" U(±√(3 / fan_in))."""
    if std is None:
        bound = math.sqrt(3.0 / math.prod(weight.shape[1:]))
        weight.copy_((torch.rand(weight.shape, generator=generator, dtype=weight.dtype) * 2 - 1)
                     * bound)
    else:
        weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * std)


@torch.no_grad()
def caffe_init_(net: ConvHighwayNet, generator: torch.Generator | None = None) -> None:
    """The definitions' initialisation: every weight from its layer's filler (highway H and T
    convs: xavier), every bias 0 but the transform gate's, which is the gate bias. Drawn in
    module order from ``generator``, so a trial's weights depend on its seed alone."""
    for module in net.layers:
        if isinstance(module, ConvBlock):
            caffe_fill_(module.conv.weight, module.spec.init_std, generator)
            module.conv.bias.zero_()
        elif isinstance(module, HighwayConv2d):
            for conv in (module.h, module.t, module.c):
                if conv is not None:
                    caffe_fill_(conv.weight, XAVIER, generator)
                    conv.bias.zero_()
            module.reset_gate_bias()
    head = net.config.layers[-1]
    assert isinstance(head, Head)
    caffe_fill_(net.classifier.weight, head.init_std, generator)
    net.classifier.bias.zero_()
