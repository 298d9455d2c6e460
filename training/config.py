"""What a training run is: the architecture and protocol shared by a pack, and each trial's own
hyperparameters. Validation lives here so the CLI, the config file and the search share it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from hwsearch.models import ACTIVATIONS, KINDS, MAX_DEPTH, PRESETS, ConvConfig, FCConfig, preset

from .data import DATASETS

MODELS = (*KINDS, *PRESETS)
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")


class ConfigError(ValueError):
    """Bad configuration; the message names the bad value and what is allowed."""


@dataclass(frozen=True)
class Hyperparams:
    """One trial's sampled values. Defaults train a 50-layer highway net to >95% in 3 epochs."""

    lr: float = 0.1
    momentum: float = 0.9
    decay_rate: float = 0.9
    activation: str = "tanh"
    gate_bias: float = -3.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check(math.isfinite(self.lr) and self.lr > 0, f"lr {self.lr} must be > 0")
        _check(0 <= self.momentum < 1, f"momentum {self.momentum} must be in [0, 1)")
        _check(0 < self.decay_rate <= 1, f"decay rate {self.decay_rate} must be in (0, 1]")
        _check(
            self.activation in ACTIVATIONS,
            f"unknown activation {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}",
        )
        _check(math.isfinite(self.gate_bias), f"gate bias {self.gate_bias} must be finite")

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Everything trials of one pack share: data, architecture, protocol, device."""

    dataset: str = "mnist"
    data_dir: str | None = None
    download: bool = False
    model: str = "highway"
    depth: int = 10
    width: int = 0  # 0: the paper's width (50 highway, 71 plain)
    epochs: int = 10
    batch_size: int = 128
    decay_steps: int = 0  # 0: one epoch of steps, so decay_rate is per epoch
    staircase: bool = False
    limit_train: int | None = None
    eval_test: bool = True
    device: str = "auto"
    dtype: str = "float32"
    carry_gate: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            self.dataset in DATASETS,
            f"unknown dataset {self.dataset!r}; allowed: {', '.join(DATASETS)}",
        )
        _check(self.model in MODELS, f"unknown model {self.model!r}; allowed: {', '.join(MODELS)}")
        _check(
            1 <= self.depth <= MAX_DEPTH,
            f"depth {self.depth} out of range; allowed: 1..{MAX_DEPTH}",
        )
        _check(self.width >= 0, f"width {self.width} must be positive (0: the paper's width)")
        _check(self.epochs >= 1, f"epochs {self.epochs} must be >= 1")
        _check(self.batch_size >= 1, f"batch size {self.batch_size} must be >= 1")
        _check(self.decay_steps >= 0, f"decay steps {self.decay_steps} must be >= 0")
        _check(
            self.limit_train is None or self.limit_train >= 1,
            f"limit-train {self.limit_train} must be >= 1",
        )
        _check(
            self.device in DEVICES, f"unknown device {self.device!r}; allowed: {', '.join(DEVICES)}"
        )
        _check(self.dtype in DTYPES, f"unknown dtype {self.dtype!r}; allowed: {', '.join(DTYPES)}")

    @property
    def is_conv(self) -> bool:
        return self.model in PRESETS

    def model_config(
        self, hp: Hyperparams, in_features: int, in_channels: int, num_classes: int
    ) -> FCConfig | ConvConfig:
        if self.is_conv:
            return preset(
                self.model,
                in_channels=in_channels,
                num_classes=num_classes,
                activation=hp.activation,
                gate_bias=hp.gate_bias,
                carry_gate=self.carry_gate,
            )
        return FCConfig(
            kind=self.model,
            depth=self.depth,
            width=self.width,
            activation=hp.activation,
            gate_bias=hp.gate_bias,
            in_features=in_features,
            num_classes=num_classes,
            carry_gate=self.carry_gate,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
