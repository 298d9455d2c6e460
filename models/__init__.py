"""Plain and highway networks. Pure PyTorch: no I/O, no globals beyond constant tables."""

from .activations import ACTIVATIONS, check_activation, get_activation
from .conv import (
    PRESETS,
    ConvConfig,
    ConvHighwayNet,
    PresetInfo,
    parameter_count,
    preset,
    preset_layers,
)
from .fc import (
    DEFAULT_WIDTH,
    KINDS,
    MAX_DEPTH,
    MAX_WIDTH,
    FCConfig,
    FCNet,
    Internals,
    check_depth,
    count_parameters,
)
from .highway import HighwayConv2d, HighwayLinear, HighwayOutput
from .packed import PackedFCNet
from .packed_conv import PackedConvNet

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_WIDTH",
    "KINDS",
    "MAX_DEPTH",
    "MAX_WIDTH",
    "PRESETS",
    "ConvConfig",
    "ConvHighwayNet",
    "FCConfig",
    "FCNet",
    "HighwayConv2d",
    "HighwayLinear",
    "HighwayOutput",
    "Internals",
    "PackedConvNet",
    "PackedFCNet",
    "PresetInfo",
    "check_activation",
    "check_depth",
    "count_parameters",
    "get_activation",
    "parameter_count",
    "preset",
    "preset_layers",
]
