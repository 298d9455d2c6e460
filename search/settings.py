"""``hwsearch launch`` settings: one frozen dataclass, filled from a TOML file and flags.

Everything is checked here, at the boundary, with errors that name the bad value; the rest of
the service takes the values as given.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hwsearch.training import DATASETS, MODELS, ConfigError, TrainConfig

from .space import SearchSpace

PACK_AUTO = 0


@dataclass(frozen=True)
class StudySpec:
    """One configuration of the search: what a study's trials share."""

    dataset: str
    model: str
    depth: int
    width: int
    epochs: int
    batch_size: int
    limit_train: int | None
    decay_steps: int = 0
    staircase: bool = False

    def study_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.dataset}-{self.model}-d{self.depth}"

    def to_attrs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def train_config(self, data_dir: str | None, download: bool, device: str) -> TrainConfig:
        return TrainConfig(
            dataset=self.dataset,
            data_dir=data_dir,
            download=download,
            model=self.model,
            depth=self.depth,
            width=self.width,
            epochs=self.epochs,
            batch_size=self.batch_size,
            decay_steps=self.decay_steps,
            staircase=self.staircase,
            limit_train=self.limit_train,
            device=device,
        )


@dataclass(frozen=True)
class LaunchSettings:
    storage: str | None = None
    dataset: str = "mnist"
    data_dir: str | None = None
    download: bool = False
    models: tuple[str, ...] = ("plain", "highway")
    depths: tuple[int, ...] = (10, 20, 50, 100)
    width: int = 0
    trials: int = 40
    epochs: int = 50
    batch_size: int = 128
    limit_train: int | None = None
    decay_steps: int = 0
    staircase: bool = False
    seed: int = 0
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0: as many as the cluster's resources allow
    pack: int = PACK_AUTO
    study_prefix: str = ""
    device: str = "auto"
    max_failed_packs: int = 5  # consecutive failed packs before the launch gives up
    heartbeat: int = 10  # seconds; a launcher silent for 3 of these is taken for dead
    progress_every: float = 5.0
    space: SearchSpace = field(default_factory=SearchSpace)

    def __post_init__(self) -> None:
        _require(
            self.dataset in DATASETS,
            f"unknown dataset {self.dataset!r}; allowed: {', '.join(DATASETS)}",
        )
        _require(len(self.models) > 0, "no models given; allowed: " + ", ".join(MODELS))
        for m in self.models:
            _require(m in MODELS, f"unknown model {m!r}; allowed: {', '.join(MODELS)}")
        _require(len(self.depths) > 0, "no depths given")
        for d in self.depths:
            _require(1 <= d <= 1000, f"depth {d} out of range; allowed: 1..1000")
        _require(self.trials >= 1, f"trials {self.trials} must be >= 1")
        _require(self.cpus_per_trial > 0, f"cpus-per-trial {self.cpus_per_trial} must be > 0")
        _require(self.gpus_per_trial >= 0, f"gpus-per-trial {self.gpus_per_trial} must be >= 0")
        _require(self.max_concurrent >= 0, f"max-concurrent {self.max_concurrent} must be >= 0")
        _require(self.pack >= 0, f"pack {self.pack} must be >= 1 (or auto)")
        _require(
            self.max_failed_packs >= 1, f"max-failed-packs {self.max_failed_packs} must be >= 1"
        )
        conv = [m for m in self.models if m not in ("plain", "highway")]
        _require(
            self.pack <= 1 or not conv,
            f"pack {self.pack} with model {conv[0] if conv else ''!r}: conv presets train one "
            "trial at a time; use --pack 1 or auto",
        )
        _require(self.heartbeat >= 1, f"heartbeat {self.heartbeat} must be >= 1 second")
        _require(
            math.isfinite(self.progress_every) and self.progress_every > 0,
            f"progress-every {self.progress_every} must be > 0",
        )
        for spec in self.study_specs():  # TrainConfig checks epochs, batch size, limits, ...
            spec.train_config(self.data_dir, self.download, self.device)

    def study_specs(self) -> list[StudySpec]:
        return [
            StudySpec(
                self.dataset,
                model,
                depth if model in ("plain", "highway") else 0,
                self.width,
                self.epochs,
                self.batch_size,
                self.limit_train,
                self.decay_steps,
                self.staircase,
            )
            for model in self.models
            for depth in (self.depths if model in ("plain", "highway") else (0,))
        ]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


_TUPLE_KEYS = {"models": str, "depths": int}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a launch config; keys are the flags' names (dashes or underscores)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"malformed TOML in {path}: {e}") from None
    return {k.replace("-", "_"): v for k, v in raw.items()}


def build_settings(values: dict[str, Any]) -> LaunchSettings:
    """``values`` from the file and the flags given (flags win); unknown keys are errors."""
    allowed = {f.name for f in fields(LaunchSettings)}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    values = dict(values)
    if "space" in values:
        if not isinstance(values["space"], dict):
            raise ConfigError(f"space must be a table, got {values['space']!r}")
        values["space"] = SearchSpace.from_dict(values["space"])
    for key, kind in _TUPLE_KEYS.items():
        if key in values:
            values[key] = _as_tuple(key, values[key], kind)
    if values.get("pack") == "auto":
        values["pack"] = PACK_AUTO
    defaults = LaunchSettings.__dataclass_fields__
    for key, value in values.items():
        expected = defaults[key].type
        if key in ("space", *_TUPLE_KEYS) or value is None:
            continue
        values[key] = _coerce(key, value, str(expected))
    return replace(_DEFAULTS, **values)


def _as_tuple(key: str, value: Any, kind: type) -> tuple[Any, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{key} must be a list or comma-separated string, got {value!r}")
    try:
        return tuple(kind(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        raise ConfigError(f"bad {key} {value!r}; expected {kind.__name__} values") from None


def _coerce(key: str, value: Any, type_name: str) -> Any:
    try:
        if type_name.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if type_name.startswith("float"):
            return float(value)
        if type_name.startswith("bool"):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if type_name.startswith("str"):
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"bad value for {key}: {value!r} (expected {type_name})") from None
    return value


_DEFAULTS = LaunchSettings()
