"""``hwsearch launch`` settings: one frozen dataclass, filled from a TOML file and flags.

The launch's own settings are fields here; the protocol every study trains with is a
:class:`TrainConfig` (``train``) whose fields are flags and keys of the same names, minus the
per-study ``model`` and ``depth`` (from ``models`` and ``depths``). Everything is checked here,
at the boundary, with errors that name the bad value; the rest of the service takes the
values as given.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwsearch.options import (
    ConfigError,
    coerce,
    did_you_mean,
    normalise_keys,
    number,
    option,
    options_of,
    printable_name,
    validate,
)
from hwsearch.storage.keep import DEFAULT_KEEP, check_keep
from hwsearch.storage.records import DEFAULT_HEARTBEAT_S
from hwsearch.storage.url import FILE_ENV_VAR
from hwsearch.training import HIGHWAY, MODELS, PLAIN, TrainConfig, family
from hwsearch.training.families import MAX_PACK

from .space import SearchSpace

PACK_AUTO = 0
MAX_TRIALS = 100_000  # per study; the papers ran 40 (100 in the NeurIPS version)
PER_STUDY = ("model", "depth")  # TrainConfig fields that come from `models` and `depths`
LIST_KEYS = {"models": str, "depths": int}
LAUNCH_EPOCHS = 50  # our choice: the papers do not state their number of epochs
MAX_CONFIG_BYTES = 1 << 20  # a launch's settings are a few hundred bytes


def _models(name: str, value: Any) -> str | None:
    if not value:
        return "no models given; allowed: " + ", ".join(MODELS)
    bad = [m for m in value if m not in MODELS]
    if not bad:
        return None
    return f"unknown model {bad[0]!r}{did_you_mean(bad[0], MODELS)}; allowed: {', '.join(MODELS)}"


def _depths(name: str, value: Any) -> str | None:
    return "no depths given" if not value else None


def _cpus(name: str, value: Any) -> str | None:
    message = number(0, 1024)(name, value)
    if message is None and 0 < value < 0.01:
        return f"{name} {value} must be 0 (auto) or >= 0.01"
    return message


def _gpus(name: str, value: Any) -> str | None:
    message = number(0, 64)(name, value)
    if message is None and 0 < value < 0.01:
        return f"{name} {value} must be 0 or >= 0.01 (a hundredth of a GPU)"
    return message


@dataclass(frozen=True)
class LaunchSettings:
    storage: str | None = option(
        None, "database URL, without a password (default $HWSEARCH_STORAGE, else "
        "sqlite:///highway-search.db)",
        metavar="URL",
    )
    storage_file: str | None = option(
        None, f"file holding the database URL, so a password stays off the command line "
        f"(default ${FILE_ENV_VAR})", metavar="FILE",
    )
    adopt: bool = option(
        False, "use studies made outside hwsearch (no recorded configuration), recording "
        "this launch's configuration in them",
    )
    allow_other_tables: bool = option(
        False, "add the study tables to a database that holds other tables and no studies "
        "(refused otherwise: it looks like another application's database)",
    )
    models: tuple[str, ...] = option(
        (PLAIN, HIGHWAY), "comma-separated: plain,highway (or conv presets)", check=_models
    )
    depths: tuple[int, ...] = option(
        (10, 20, 50, 100), "comma-separated, e.g. 10,20,50,100", check=_depths
    )
    trials: int = option(40, "finished trials per configuration (default 40)",
                         check=number(1, MAX_TRIALS))
    seed: int = option(0, "the studies' sampling seed", check=number(0, 2**31 - 1))
    study_prefix: str = option("", "prefix of the study names (printable characters)",
                               check=printable_name(100))
    ray_address: str | None = option(None, "existing Ray cluster (default: start a local Ray)")
    ray_timeout: float = option(
        30.0, "seconds the cluster at ray-address has to answer before the launch gives up "
        "(default 30)", check=number(above=0, high=3600),
    )
    cpus_per_trial: float = option(
        0.0, "CPUs (torch threads) per pack; 0 (auto): 1, with a local launch's trials "
        "split so that every core gets a pack", check=_cpus,
    )
    gpus_per_trial: float = option(0.0, "GPUs per pack; fractions share a GPU", check=_gpus)
    max_concurrent: int = option(0, "packs at once; 0: as the cluster allows",
                                 check=number(0, 100_000))
    pack: int = option(PACK_AUTO, "Optuna trials per Ray trial: a number or auto (default)",
                       check=number(0, MAX_PACK), metavar="K|auto")
    max_failed_packs: int = option(5, "give up after this many failed packs in a row",
                                   check=number(1, 10_000))
    keep_weights: str = option(
        DEFAULT_KEEP, "whose trained weights are stored: top:N (the N best trials of each "
        f"study by objective; default {DEFAULT_KEEP}), all, or none", check=check_keep,
        metavar="top:N|all|none",
    )
    artifacts: str | None = option(
        None, "existing directory for the weights files (Optuna's file-system artifact "
        "store; e.g. a volume every launcher mounts), recorded in each study; default: in "
        "the database", metavar="DIR",
    )
    heartbeat: int = option(DEFAULT_HEARTBEAT_S, "seconds between trial heartbeats (default 10)",
                            check=number(1, 3600))
    progress_every: float = option(5.0, "seconds between progress reports",
                                   check=number(above=0, high=86_400))
    space: SearchSpace = option(help="the search space (TOML table [space])",
                                factory=SearchSpace)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=LAUNCH_EPOCHS))

    def __post_init__(self) -> None:
        validate(self)
        self.configs()  # TrainConfig checks each study's model and depth

    def configs(self) -> list[TrainConfig]:
        """One training configuration per study: each model at each depth (a conv preset at
        its own depth)."""
        out = []
        for model in self.models:
            for depth in family(model).depths(self.depths, self.train.depth):
                out.append(replace(self.train, model=model, depth=depth))
        return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a launch config; keys are the flags' names (dashes or underscores). A file that
    is missing, not a file, unreadable, too big or not UTF-8 TOML is a one-line error."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory; allowed: a TOML file") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KiB; allowed: "
                          "a launch's TOML settings")
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start}); allowed: a "
                          "TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"malformed TOML in {path}: {str(e).splitlines()[0]}") from None
    return normalise_keys(raw)


def setting_keys() -> tuple[set[str], set[str]]:
    """The keys a config file (and the flags) may set: the launch's own, and the protocol's."""
    launch = {f.name for f, _ in options_of(LaunchSettings)}
    train = {f.name for f, _ in options_of(TrainConfig)} - set(PER_STUDY)
    return launch, train


def build_settings(values: dict[str, Any]) -> LaunchSettings:
    """``values`` from the file and the flags given (flags win); unknown keys are errors."""
    values = normalise_keys(values)
    launch_keys, train_keys = setting_keys()
    unknown = sorted(set(values) - launch_keys - train_keys)
    if unknown:
        allowed = ", ".join(sorted(launch_keys | train_keys))
        raise ConfigError(f"unknown key {unknown[0]!r}; allowed: {allowed}")
    types = {f.name: str(f.type) for f, _ in [*options_of(LaunchSettings),
                                              *options_of(TrainConfig)]}
    launch: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for key, value in values.items():
        if key == "space":
            if not isinstance(value, dict):
                raise ConfigError(f"space must be a table, got {value!r}")
            launch[key] = SearchSpace.from_dict(value)
        elif key in LIST_KEYS:
            launch[key] = _as_tuple(key, value, LIST_KEYS[key])
        elif key == "pack" and value == "auto":
            launch[key] = PACK_AUTO
        elif value is not None:
            target = launch if key in launch_keys else train
            target[key] = coerce(key, value, types[key])
    base = LaunchSettings.__dataclass_fields__["train"].default_factory()  # type: ignore[misc]
    return LaunchSettings(train=replace(base, **train), **launch)


def _as_tuple(key: str, value: Any, kind: type) -> tuple[Any, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{key} must be a list or comma-separated string, got {value!r}")
    try:
        return tuple(kind(str(v).strip()) for v in items if str(v).strip())
    except ValueError:
        raise ConfigError(f"bad {key} {value!r}; expected {kind.__name__} values") from None
