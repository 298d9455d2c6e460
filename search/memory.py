"""Will a pack fit? A lower bound on a pack's memory, checked against the device's before a
launch starts anything.

A typo (``--width 4096 --depths 1000 --pack 4096``) otherwise surfaces minutes later as packs
failing one after another with out-of-memory errors on the workers. The estimate counts only
what certainly lives at once, so a refusal is never wrong: per trial four copies of the
parameters (weights, gradients, momentum, the best epoch's weights) and the activations
autograd keeps for one minibatch; per pack the dataset, resident on the device. It leaves out
the evaluation pass, the allocator's slack and CUDA's context, so a pack it lets through may
still not fit. Fully connected nets only: conv presets train one trial at a time.

Only a local Ray is checked: on a cluster the driver does not know the workers' memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hwsearch.models.fc_config import DEFAULT_WIDTH
from hwsearch.options import ConfigError
from hwsearch.training import TrainConfig

# (train examples, test examples, features, classes): hwsearch.training.data's datasets.
DATASET_SIZES = {
    "mnist": (60_000, 10_000, 784, 10),
    "fashion-mnist": (60_000, 10_000, 784, 10),
    "cifar10": (50_000, 10_000, 3072, 10),
    "cifar100": (50_000, 10_000, 3072, 100),
}
PARAMETER_COPIES = 4  # weights, gradients, momentum buffers, best weights
# Tensors of a minibatch's width autograd keeps per layer, at least: a plain layer its input
# and pre-activation; a highway layer its input, H, T and their pre-activations (C too).
SAVED_PER_LAYER = {"plain": 2, "highway": 4}
GIB = 1 << 30


@dataclass(frozen=True)
class Device:
    name: str  # "CPU memory" or "GPU memory"
    total: int  # bytes this pack may use: a fraction of a GPU gets that fraction


def pack_bytes(config: TrainConfig, pack: int) -> int | None:
    """A lower bound on the bytes a pack of ``pack`` trials of ``config`` holds at once;
    None for conv presets (not estimated)."""
    if config.is_conv:
        return None
    n_train, n_test, features, classes = DATASET_SIZES[config.dataset]
    if config.limit_train:
        n_train = min(n_train, config.limit_train)
    item = 8 if config.dtype == "float64" else 4
    w = config.width or DEFAULT_WIDTH[config.model]
    gates = 2 + int(config.carry_gate) if config.model == "highway" else 1  # H, T (, C)
    params = features * w + w + (config.depth - 1) * gates * (w * w + w) + w * classes + classes
    batch = config.batch  # 0 means the recipe's batch
    saved = batch * (
        features + config.depth * w * (SAVED_PER_LAYER[config.model] + int(config.carry_gate))
        + classes
    )
    data = (n_train + (n_test if config.eval_test else 0)) * features * item
    return pack * item * (PARAMETER_COPIES * params + saved) + data


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


def check_fits(configs: list[TrainConfig], pack: int, device: Device | None) -> None:
    """A one-line :class:`ConfigError` when a pack of any configuration cannot fit."""
    if device is None:
        return
    for config in configs:
        need = pack_bytes(config, pack)
        if need is not None and need > device.total:
            width = config.width or DEFAULT_WIDTH[config.model]
            raise ConfigError(
                f"a pack of {pack} {config.model} nets (depth {config.depth}, width {width}, "
                f"batch {config.batch}) needs at least {need / GIB:.1f} GiB; "
                f"{device.name} is {device.total / GIB:.1f} GiB; allowed: a smaller --pack, "
                "--width, --depths or --batch-size"
            )
