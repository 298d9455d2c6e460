"""Fully connected plain and highway nets of the papers' Figure 1.

Layout: one plain layer from the input to ``width``, then ``depth − 1`` highway (or plain) layers
of that width, then a linear softmax classifier. ``depth=10`` is the paper's "first layer + 9".
The default widths, 50 (highway) and 71 (plain), make one highway layer (5,100 parameters) cost
what one plain layer (5,112) does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import torch
from torch import nn

from .activations import get_activation
from .fc_config import FCConfig
from .highway import HighwayLinear, he_init_


class Internals(NamedTuple):
    """Per highway layer, each ``(L, B, width)``: the transform gate T(x), the block state
    H(x), and the block output y = H(x)·T(x) + x·(1 − T(x)) (what the layer passes on)."""

    gates: torch.Tensor
    states: torch.Tensor
    outputs: torch.Tensor


class PlainLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.activation = activation
        self._act = get_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.linear(x))


class FCNet(nn.Module):
    """Plain or highway MLP. Layers live in a ModuleList and run in a loop: depth 1000 is fine."""

    def __init__(self, config: FCConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        self.first = PlainLinear(c.in_features, c.width, c.activation)
        if c.highway:
            self.layers = nn.ModuleList(
                HighwayLinear(c.width, c.activation, c.gate_bias, c.carry_gate)
                for _ in range(c.depth - 1)
            )
        else:
            self.layers = nn.ModuleList(
                PlainLinear(c.width, c.width, c.activation) for _ in range(c.depth - 1)
            )
        self.classifier = nn.Linear(c.width, c.num_classes)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        he_init_(self, generator)

    def forward(self, x: torch.Tensor, lesion: Collection[int] = ()) -> torch.Tensor:
        """Logits for ``x`` of shape (B, in_features); ``lesion`` pins T = 0 in those layers."""
        h = self.first(x.flatten(1))  # (B, width)
        for i, layer in enumerate(self.layers):
            h = layer(h, force_gate=0.0) if i in lesion else layer(h)
        return self.classifier(h)  # (B, classes)

    @torch.no_grad()
    def internals(self, x: torch.Tensor) -> Internals:
        """Gate and block outputs of every highway layer, for the paper's Figure 2."""
        if not self.config.highway:
            raise ValueError("internals exist only for highway nets")
        h = self.first(x.flatten(1))
        gates, states, outputs = [], [], []
        for layer in self.layers:
            out = layer.forward_full(h)
            gates.append(out.gate)
            states.append(out.block)
            outputs.append(out.y)
            h = out.y
        empty = h.new_zeros(0, h.shape[0], self.config.width)

        def stack(rows: list[torch.Tensor]) -> torch.Tensor:
            return torch.stack(rows) if rows else empty

        return Internals(stack(gates), stack(states), stack(outputs))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
