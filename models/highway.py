"""Highway layers: ``y = H(x)·T(x) + x·C(x)`` with ``C = 1 − T`` unless a carry gate is asked for.

The transform-gate bias ``b_T`` starts negative so that at initialisation every layer mostly
carries its input through; that is what lets a 100-layer net train at all (Srivastava et al. 2015).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import get_activation


class HighwayOutput:
    """What one highway layer computed; kept apart from the layer so analysis needs no hooks."""

    __slots__ = ("y", "gate", "block")

    def __init__(self, y: torch.Tensor, gate: torch.Tensor, block: torch.Tensor) -> None:
        self.y, self.gate, self.block = y, gate, block


def highway_combine(
    x: torch.Tensor, h: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None
) -> torch.Tensor:
    # x + t·(h − x) is H·T + x·(1 − T) with one fewer multiply.
    return x + t * (h - x) if c is None else h * t + x * c


class _Highway(nn.Module):
    """Shared logic of the dense and convolutional layers; subclasses supply the three maps."""

    h: nn.Module
    t: nn.Module
    c: nn.Module | None

    def __init__(self, activation: str, gate_bias: float) -> None:
        super().__init__()
        self.activation = activation
        self.gate_bias = gate_bias
        self._act = get_activation(activation)

    def forward_full(self, x: torch.Tensor, force_gate: float | None = None) -> HighwayOutput:
        """Forward that also returns T(x) and H(x); ``force_gate`` pins T (0 lesions the layer)."""
        block = self._act(self.h(x))
        gate = torch.sigmoid(self.t(x))
        if force_gate is not None:
            gate = torch.full_like(gate, force_gate)
        carry = torch.sigmoid(self.c(x)) if self.c is not None else None
        if force_gate is not None and carry is not None:
            carry = torch.full_like(carry, 1.0 - force_gate)
        return HighwayOutput(highway_combine(x, block, gate, carry), gate, block)

    def forward(self, x: torch.Tensor, force_gate: float | None = None) -> torch.Tensor:
        return self.forward_full(x, force_gate).y

    @torch.no_grad()
    def reset_gate_bias(self) -> None:
        nn.init.constant_(self.t.bias, self.gate_bias)
        if self.c is not None:
            nn.init.constant_(self.c.bias, -self.gate_bias)  # C ≈ 1 − T at the start


@torch.no_grad()
def he_init_(net: nn.Module, generator: torch.Generator | None = None) -> None:
    """He-normal weights (as in the paper), zero biases, then every highway layer's constant
    gate bias. A generator makes the draw independent of the global RNG, so a trial's weights
    depend on its seed alone, whether it trains on its own or in a pack."""
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            std = (2.0 / math.prod(p.shape[1:])) ** 0.5  # fan-in of a Linear or a Conv2d
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std)
        else:
            p.zero_()
    for module in net.modules():
        if isinstance(module, _Highway):
            module.reset_gate_bias()


class HighwayLinear(_Highway):
    """Fully connected highway layer of constant width (5,100 parameters at width 50)."""

    def __init__(
        self,
        width: int,
        activation: str = "relu",
        gate_bias: float = -2.0,
        carry_gate: bool = False,
    ) -> None:
        super().__init__(activation, gate_bias)
        self.h = nn.Linear(width, width)
        self.t = nn.Linear(width, width)
        self.c = nn.Linear(width, width) if carry_gate else None
        self.reset_gate_bias()


class HighwayConv2d(_Highway):
    """Convolutional highway layer; same padding keeps the shape so the carry path is identity."""

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        activation: str = "relu",
        gate_bias: float = -2.0,
        carry_gate: bool = False,
    ) -> None:
        super().__init__(activation, gate_bias)
        pad = kernel_size // 2

        def conv() -> nn.Conv2d:
            return nn.Conv2d(channels, channels, kernel_size, padding=pad)

        self.h, self.t = conv(), conv()
        self.c = conv() if carry_gate else None
        self.reset_gate_bias()
