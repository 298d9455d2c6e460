"""Will a pack fit? A lower bound on a pack's memory, checked against the device's before a
launch starts anything.

A typo (a width of 4096 at depth 1000 in packs of 4096) otherwise surfaces minutes later as
packs failing one after another with out-of-memory errors on the workers. The estimate is the
family's (``Family.pack_bytes``): it counts only what certainly lives at once, so a refusal
is never wrong. Fully connected nets only: conv presets train one trial at a time.

Only a local Ray is checked: on a cluster the driver does not know the workers' memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hwsearch.options import ConfigError
from hwsearch.training import TrainConfig, family

GIB = 1 << 30


@dataclass(frozen=True)
class Device:
    name: str  # "CPU memory" or "GPU memory"
    total: int  # bytes this pack may use: a fraction of a GPU gets that fraction


def pack_bytes(config: TrainConfig, pack: int) -> int | None:
    """A lower bound on the bytes a pack of ``pack`` trials of ``config`` holds at once (the
    family's estimate); None for a family that is not estimated (the conv presets)."""
    return family(config.model).pack_bytes(config, pack)


def local_device(gpus_per_trial: float) -> Device | None:
    """The memory a pack may use on this machine, or None when it cannot be told."""
    if gpus_per_trial > 0:
        try:
            import torch

            if not torch.cuda.is_available():
                return None
            total = torch.cuda.mem_get_info()[1]
        except (ImportError, RuntimeError):
            return None
        return Device("GPU memory", int(total * min(1.0, gpus_per_trial)))
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return Device("CPU memory", total)


def check_fits(configs: list[TrainConfig], pack: int, device: Device | None,
               *, single: bool = False) -> None:
    """A one-line :class:`ConfigError` when a pack of any configuration cannot fit;
    ``single``: one trial trained alone (``train``), said so."""
    if device is None:
        return
    for config in configs:
        need = pack_bytes(config, pack)
        if need is not None and need > device.total:
            width = config.width or family(config.model).default_width
            what = (f"a {config.model} net" if single
                    else f"a pack of {pack} {config.model} nets")
            smaller = "`width`, `depth`" if single else "`pack`, `width`, `depths`"
            raise ConfigError(
                f"{what} (depth {config.depth}, width {width}, batch {config.batch}) needs "
                f"at least {need / GIB:.1f} GiB; {device.name} is {device.total / GIB:.1f} "
                f"GiB; allowed: a smaller {smaller} or `batch_size`"
            )
