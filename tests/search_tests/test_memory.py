"""The pack-memory estimate: a lower bound that grows with what it counts, and a refusal that
names the numbers."""

from __future__ import annotations

import pytest

from hwsearch.options import ConfigError
from hwsearch.search.memory import GIB, Device, check_fits, local_device, pack_bytes
from hwsearch.training import TrainConfig

BASE = TrainConfig(model="highway", depth=50, width=50, batch_size=128)


def test_the_estimate_grows_with_each_factor() -> None:
    one = pack_bytes(BASE, 1)
    assert one is not None
    for bigger in (
        TrainConfig(model="highway", depth=100, width=50),
        TrainConfig(model="highway", depth=50, width=100),
        TrainConfig(model="highway", depth=50, width=50, batch_size=1024),
        TrainConfig(model="highway", depth=50, width=50, dtype="float64"),
        TrainConfig(model="highway", depth=50, width=50, carry_gate=True),
    ):
        assert pack_bytes(bigger, 1) > one
    assert pack_bytes(BASE, 8) > pack_bytes(BASE, 1)
    assert pack_bytes(TrainConfig(model="mnist-highway-10"), 1) is None  # not estimated


def test_a_lower_bound_of_the_weights_alone() -> None:
    """Parameters × 4 copies × 4 bytes at the least, for one trial of depth 50, width 50."""
    w, d = 50, 50
    params = 784 * w + w + (d - 1) * 2 * (w * w + w) + w * 10 + 10
    data = 70_000 * 784 * 4
    assert pack_bytes(BASE, 1) >= 4 * 4 * params + data
    # The paper's nets are small: a pack of 8 on MNIST needs well under a GiB.
    assert pack_bytes(BASE, 8) < GIB


def test_what_cannot_fit_is_refused() -> None:
    huge = TrainConfig(model="highway", depth=1000, width=4096)
    with pytest.raises(ConfigError) as e:
        check_fits([BASE, huge], 1, Device("CPU memory", 16 * GIB))
    message = str(e.value)
    assert "depth 1000, width 4096" in message and "CPU memory is 16.0 GiB" in message
    assert "allowed: a smaller `pack`" in message  # the command line shows --pack
    check_fits([BASE], 8, Device("CPU memory", 16 * GIB))  # fits: no error
    check_fits([huge], 1, None)  # unknown device: not checked


def test_this_machines_memory_is_known() -> None:
    device = local_device(0)
    assert device is not None and device.name == "CPU memory" and device.total > GIB
