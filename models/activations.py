"""Activation functions by name, so configs and search spaces can say ``"relu"``."""

from __future__ import annotations

from collections.abc import Callable

import torch

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def check_activation(name: str) -> None:
    """The one check of an activation name, for every config that takes one."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    check_activation(name)
    return ACTIVATIONS[name]
