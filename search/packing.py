"""How many trials a pack holds and how many cores it gets: decided before Ray starts (and
before torch is imported), so a launch can check a pack's memory first."""

from __future__ import annotations

import os

from hwsearch.training import family

from .settings import PACK_AUTO, LaunchSettings

# A local CPU pack at most: per trial-step a pack of 20 costs what one of 8 does, or a little
# less (docs/performance.md), and fewer packs pay fewer starts.
LOCAL_PACK_MAX = 20


def pick_pack_size(settings: LaunchSettings) -> int:
    """The ``pack`` setting, or for auto: the smallest default of the launch's families on its
    device (each family's ``auto_pack``; docs/performance.md says why), and never more than a
    study needs. On a local CPU, where the families pack at all, a study's trials are split
    evenly into one pack per core, or more where a pack would exceed ``LOCAL_PACK_MAX``: a
    study's packs are then alike, and the cores stay busy to the last one."""
    if settings.pack != PACK_AUTO:
        return settings.pack
    device = "gpu" if settings.gpus_per_trial > 0 else "cpu"
    size = min(family(m).auto_pack[device] for m in settings.models)
    if settings.gpus_per_trial == 0 and not settings.ray_address and size > 1:
        cores = os.cpu_count() or 1  # a local Ray gets every core
        packs = max(cores, -(-settings.trials // LOCAL_PACK_MAX))  # per study
        size = -(-settings.trials // packs)
    return max(1, min(size, settings.trials))


def cpus_per_pack(settings: LaunchSettings) -> float:
    """The CPUs a pack asks for, or for auto: one core a pack (on a loaded machine a pack's
    threads wait for each other at every step); a launch of fewer packs than cores leaves the
    rest idle rather than risk that."""
    return settings.cpus_per_trial if settings.cpus_per_trial > 0 else 1.0
