"""Plain and highway networks. Pure PyTorch: no I/O, no globals beyond constant tables.

The definitions (``fc_config``, ``presets``, ``activations``) import no torch; the modules
(``fc``, ``conv``, ``highway``, ``packed``, ``packed_conv``) do."""

from __future__ import annotations

from hwsearch.lazy import lazy_exports

# Each public name and the module that defines it. Names are imported when first used, so
# that settings and read commands can use the torch-free ones without importing torch.
_WHERE = {
    "ACTIVATIONS": "activations",
    "check_activation": "activations",
    "get_activation": "activations",
    "PRESETS": "presets",
    "ConvConfig": "presets",
    "PresetInfo": "presets",
    "parameter_count": "presets",
    "preset": "presets",
    "preset_layers": "presets",
    "ConvHighwayNet": "conv",
    "DEFAULT_WIDTH": "fc_config",
    "KINDS": "fc_config",
    "MAX_DEPTH": "fc_config",
    "MAX_WIDTH": "fc_config",
    "FCConfig": "fc_config",
    "check_depth": "fc_config",
    "FCNet": "fc",
    "Internals": "fc",
    "count_parameters": "fc",
    "HighwayConv2d": "highway",
    "HighwayLinear": "highway",
    "HighwayOutput": "highway",
    "PackedFCNet": "packed",
    "PackedConvNet": "packed_conv",
}
__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
