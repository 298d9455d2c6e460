"""The search space, in one place. Overridable from the TOML config's ``[space]`` table.

What is searched follows Srivastava et al. (2015, arXiv:1505.00387, Sec. 4.1): the initial
learning rate, momentum, the learning-rate decay, the activation (relu or tanh) and, for
highway nets only, the initial transform-gate bias, uniform in [-10, -1] (the papers' range).
The papers state no range for the learning rate, momentum or decay: the ranges below are this
project's choices, said as such in the README and the report (``hwsearch.report.protocol``).
``lr_decay`` is the factor by which the rate has fallen at the end of the run, so its range
means the same whatever the number of epochs.

A conv preset trains with its definition's solver (``hwsearch.training.recipe``): ReLU and a
multistep rate, so neither the activation nor ``lr_decay`` is searched. What is searched is
the rate, the (Nesterov) momentum, the weight decay and the gate bias, in ranges around the
solver's values (0.01 or 0.025, 0.9, 0.001, -1 or -2). The papers publish these values but no
search over them; the ranges are this project's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
)

from hwsearch.models import ACTIVATIONS, check_activation
from hwsearch.options import ConfigError
from hwsearch.training import HIGHWAY, family


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False

    def check(self, name: str) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"space.{name}: bounds [{self.low}, {self.high}] must be finite")
        if not self.low <= self.high:
            raise ConfigError(f"space.{name}: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"space.{name}: log range needs low > 0, got {self.low}")


# Values outside these make no sense for SGD (momentum 1 never forgets, decay 0 stops at once).
_LIMITS = {"momentum": (0.0, 0.999999), "lr_decay": (1e-9, 1.0), "gate_bias": (-100.0, 100.0),
           "conv_momentum": (0.0, 0.999999), "conv_gate_bias": (-100.0, 100.0),
           "weight_decay": (0.0, 1.0)}
_RANGES = ("lr", "momentum", "lr_decay", "gate_bias", "conv_lr", "conv_momentum", "weight_decay",
           "conv_gate_bias")
# Drawn uniformly whatever their ``log`` says: the papers' ranges for these are linear.
_LINEAR = ("momentum", "gate_bias", "conv_momentum", "conv_gate_bias")


@dataclass(frozen=True)
class SearchSpace:
    lr: Range = Range(1e-6, 1.0, log=True)
    momentum: Range = Range(0.0, 0.99)
    lr_decay: Range = Range(1e-3, 1.0, log=True)
    gate_bias: Range = Range(-10.0, -1.0)
    activation: tuple[str, ...] = ("relu", "tanh")
    # conv presets (their solver's values: lr 0.01 or 0.025, momentum 0.9, decay 0.001)
    conv_lr: Range = Range(1e-3, 0.1, log=True)
    conv_momentum: Range = Range(0.8, 0.99)
    weight_decay: Range = Range(1e-4, 1e-2, log=True)
    conv_gate_bias: Range = Range(-4.0, 0.0)

    def __post_init__(self) -> None:
        for f in _RANGES:
            r: Range = getattr(self, f)
            r.check(f)
            lo, hi = _LIMITS.get(f, (-float("inf"), float("inf")))
            if r.low < lo or r.high > hi:
                raise ConfigError(f"space.{f}: [{r.low}, {r.high}] outside allowed [{lo}, {hi}]")
        if not self.activation:
            raise ConfigError(f"space.activation must be a non-empty subset of {list(ACTIVATIONS)}")
        for name in self.activation:
            try:
                check_activation(name)
            except ValueError as e:
                raise ConfigError(f"space.activation: {e}") from None

    def distributions(self, model: str) -> dict[str, BaseDistribution]:
        """The Optuna distributions of what ``model``'s family samples (the gate bias for
        highway nets and conv presets only), each from its range here."""
        dists: dict[str, BaseDistribution] = {}
        for name, key in family(model).samples.items():
            value = getattr(self, key)
            if isinstance(value, Range):
                dists[name] = FloatDistribution(value.low, value.high,
                                                log=value.log and key not in _LINEAR)
            else:
                dists[name] = CategoricalDistribution(list(value))
        return dists

    def to_dict(self, model: str = HIGHWAY) -> dict[str, object]:
        """The part of the space ``model``'s studies sample from, as a study records it: an FC
        study the FC keys (as before conv studies existed, so its resume still matches), a conv
        study the conv keys; a change to one family's ranges never blocks the other's resume."""
        out: dict[str, object] = {}
        for key in family(model).space_keys:
            v = getattr(self, key)
            out[key] = (
                list(v) if isinstance(v, tuple) else {"low": v.low, "high": v.high, "log": v.log}
            )
        return out

    @classmethod
    def from_dict(cls, table: dict[str, object]) -> SearchSpace:
        """Override defaults from a TOML ``[space]`` table: ``lr = {low=1e-5, high=0.5}``."""
        space = cls()
        allowed = [f.name for f in fields(cls)]
        changes: dict[str, object] = {}
        for key, value in table.items():
            if key not in allowed:
                raise ConfigError(f"unknown key space.{key}; allowed: {', '.join(allowed)}")
            if key == "activation":
                if not isinstance(value, list):
                    raise ConfigError(f"space.activation must be a list, got {value!r}")
                changes[key] = tuple(value)
                continue
            if not isinstance(value, dict) or not set(value) <= {"low", "high", "log"}:
                raise ConfigError(
                    f"space.{key} must be a table with low, high (and log), got {value!r}"
                )
            base: Range = getattr(space, key)
            try:
                changes[key] = Range(
                    float(value.get("low", base.low)),
                    float(value.get("high", base.high)),
                    bool(value.get("log", base.log)),
                )
            except (TypeError, ValueError):
                raise ConfigError(f"space.{key} bounds must be numbers, got {value!r}") from None
        return replace(space, **changes)  # type: ignore[arg-type]
