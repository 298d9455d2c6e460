"""Plain and highway networks. Pure PyTorch: no I/O, no globals beyond constant tables.

This package's names are the torch-free definitions (what a net is), so that settings and the
read commands can use them without importing torch. The nets themselves are imported from
their modules: ``models.fc`` (:class:`FCNet`), ``models.conv`` (:class:`ConvHighwayNet`),
``models.highway`` (the layers), ``models.packed`` and ``models.packed_conv`` (K nets as one).
"""

from __future__ import annotations

from .activations import ACTIVATIONS, check_activation, get_activation
from .fc_config import KINDS, MAX_DEPTH, MAX_WIDTH, FCConfig, Kind, check_depth
from .presets import PRESETS, ConvConfig, PresetInfo, parameter_count, preset, preset_layers

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "MAX_DEPTH",
    "MAX_WIDTH",
    "PRESETS",
    "ConvConfig",
    "FCConfig",
    "Kind",
    "PresetInfo",
    "check_activation",
    "check_depth",
    "get_activation",
    "parameter_count",
    "preset",
    "preset_layers",
]
