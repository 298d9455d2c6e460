"""How many trials a pack holds and how many cores it gets: decided before Ray starts (and
before torch is imported), so a launch can check a pack's memory first."""

from __future__ import annotations

import os

from .settings import MAX_PACK, PACK_AUTO, LaunchSettings

# From benchmarks/throughput.py: on 2 CPU cores packs of 8 give 3× a conventional loop and 40
# no more; a pack runs one thread per core it is given, and on a loaded machine a pack of 8 on
# two threads ran 6-15× slower than on one (each step's thread barrier waits for a descheduled
# thread), so on a CPU each pack gets one core and a launch splits its trials into enough packs
# to give every core one. On an H200 throughput still grows from K=40 to K=640, so on a GPU a
# study's trials form one pack (40 by default, one program; activations mix). A pack never
# exceeds what a study needs.
AUTO_PACK = {"cpu": 8, "gpu": MAX_PACK}
# Conv packs (grouped convolutions): on 2 CPU cores a pack ran at 0.7-0.8x the single engine's
# trial-steps/s (benchmarks/results/conv_cpu.json), so on CPU conv trials train one at a time;
# on a GPU, where one width-16 net is a small load, 8 (untimed: no GPU was lent).
AUTO_CONV_PACK = {"cpu": 1, "gpu": 8}


def pick_pack_size(settings: LaunchSettings) -> int:
    if settings.pack != PACK_AUTO:
        return settings.pack
    conv = any(m not in ("plain", "highway") for m in settings.models)
    size = (AUTO_CONV_PACK if conv else AUTO_PACK)["gpu" if settings.gpus_per_trial > 0 else "cpu"]
    if settings.gpus_per_trial == 0 and not settings.ray_address:
        cores = os.cpu_count() or 1  # a local Ray gets every core
        runs = settings.trials * len(settings.configs())
        size = min(size, -(-runs // cores))
    return max(1, min(size, settings.trials))


def cpus_per_pack(settings: LaunchSettings) -> float:
    """``--cpus-per-trial``, or for auto: one core a pack (see ``AUTO_PACK``); a launch of fewer
    packs than cores leaves the rest idle rather than risk the thread barrier under load."""
    return settings.cpus_per_trial if settings.cpus_per_trial > 0 else 1.0
