"""Activation functions by name, so configs and search spaces can say ``"relu"``. The names are
torch-free (settings are checked before torch is imported); the functions come from torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ACTIVATIONS = ("relu", "tanh", "sigmoid")  # each is torch.<name>


def check_activation(name: str) -> None:
    """The one check of an activation name, for every config that takes one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch

    check_activation(name)
    return getattr(torch, name)
