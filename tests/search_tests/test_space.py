"""The search space is the documented one, range by range (docs: the search space table):
a change to a default range must show up here and in the docs together."""

from __future__ import annotations

import math

from optuna.distributions import CategoricalDistribution, FloatDistribution

from hwsearch.search.space import SearchSpace

FC = {
    "lr": FloatDistribution(1e-6, 1.0, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
    "lr_decay": FloatDistribution(1e-3, 1.0, log=True),
    "activation": CategoricalDistribution(["relu", "tanh"]),
}
HIGHWAY = {**FC, "gate_bias": FloatDistribution(-10.0, -1.0)}  # the papers' range
CONV = {  # around the authors' solver values
    "lr": FloatDistribution(1e-3, 0.1, log=True),
    "momentum": FloatDistribution(0.8, 0.99),
    "weight_decay": FloatDistribution(1e-4, 1e-2, log=True),
    "gate_bias": FloatDistribution(-4.0, 0.0),
}


def test_the_fully_connected_ranges() -> None:
    space = SearchSpace()
    assert space.distributions("highway") == HIGHWAY
    assert space.distributions("plain") == FC  # no gate to bias


def test_the_conv_ranges() -> None:
    for preset in ("mnist-highway-10", "cifar10-highway-19", "cifar100-highway-19"):
        assert SearchSpace().distributions(preset) == CONV, preset


def test_draws_stay_inside_and_spread_over_the_ranges() -> None:
    """200 seeded draws per parameter: all inside, and reaching the ends of each range (a
    log-uniform range is spread over its decades, not bunched at the top)."""
    import optuna

    from hwsearch.search.sampler import SeededRandomSampler

    study = optuna.create_study(sampler=SeededRandomSampler(0))
    draws = [study.ask(HIGHWAY).params for _ in range(200)]
    for name, dist in HIGHWAY.items():
        values = [d[name] for d in draws]
        if isinstance(dist, CategoricalDistribution):
            assert set(values) == set(dist.choices)
            continue
        assert all(dist.low <= v <= dist.high for v in values), name
        span = (math.log10(dist.high / dist.low) if dist.log else dist.high - dist.low)

        def position(v: float, dist: FloatDistribution = dist) -> float:
            return math.log10(v / dist.low) if dist.log else v - dist.low

        assert min(map(position, values)) < 0.1 * span and max(map(position, values)) > 0.9 * span
