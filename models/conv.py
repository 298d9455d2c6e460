"""Convolutional highway nets for MNIST and CIFAR.

A net is a layout string of tokens read left to right:
``c<N>[k<K>]`` plain conv to N channels (kernel K, default 3), ``h[k<K>]`` highway conv at the
current width, ``p`` 2×2 max-pooling. A global-average-pooled linear classifier closes every net.

The papers do not publish their convolutional layouts (1507.06228 gives only layer and parameter
counts), so the presets below are approximations with the stated sizes, not the authors' nets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from .activations import check_activation, get_activation
from .highway import HighwayConv2d, he_init_

_TOKEN = re.compile(r"^(?:c(?P<c>\d+)|(?P<h>h)|(?P<p>p))(?:k(?P<k>\d+))?$")

# name -> (layout, paper's description). Parameter counts are checked in the tests.
PRESETS: dict[str, tuple[str, str]] = {
    # 1 plain + 9 highway conv layers of width 16, ≈42K parameters (paper: 10 layers, 39K).
    "mnist-highway-10": ("c16 h h h p h h h p h h h", "MNIST, 10 layers, width 16 (~39K)"),
    # 11 conv layers, ≈236K parameters (paper's "Highway A", 11 layers, 236K).
    "cifar-highway-a": (
        "c24 h h p c40k1 h h h p c48k1 h h h",
        "CIFAR-10 Highway A, 11 layers (~236K)",
    ),
}


@dataclass(frozen=True)
class ConvConfig:
    layout: str = PRESETS["mnist-highway-10"][0]
    in_channels: int = 1
    num_classes: int = 10
    activation: str = "relu"
    gate_bias: float = -2.0
    carry_gate: bool = False

    def __post_init__(self) -> None:
        check_activation(self.activation)
        tokens = self.layout.split()
        if not tokens or not tokens[0].startswith("c"):
            raise ValueError(f"layout {self.layout!r} must start with a plain conv 'c<N>'")
        for tok in tokens:
            if not _TOKEN.match(tok):
                raise ValueError(f"bad layout token {tok!r}; allowed: c<N>[k<K>], h[k<K>], p")

    @property
    def depth(self) -> int:
        """Convolutional layers, plain and highway (pooling does not count)."""
        return sum(1 for t in self.layout.split() if t != "p")


def preset(name: str, **overrides: object) -> ConvConfig:
    try:
        layout = PRESETS[name][0]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}") from None
    return ConvConfig(layout=layout, **overrides)  # type: ignore[arg-type]


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        self._act = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.conv(x))


class ConvHighwayNet(nn.Module):
    def __init__(self, config: ConvConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_channels
        for tok in config.layout.split():
            m = _TOKEN.match(tok)
            assert m is not None  # validated by ConvConfig
            kernel = int(m["k"] or 3)
            if m["c"]:
                layers.append(ConvBlock(width, int(m["c"]), kernel, config.activation))
                width = int(m["c"])
            elif m["h"]:
                layers.append(
                    HighwayConv2d(
                        width, kernel, config.activation, config.gate_bias, config.carry_gate
                    )
                )
            else:
                layers.append(nn.MaxPool2d(2))
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(width, config.num_classes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        he_init_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:  # x: (B, C, H, W)
            x = layer(x)
        return self.classifier(x.mean(dim=(2, 3)))  # (B, classes)
