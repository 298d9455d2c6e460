"""Studies: one per configuration, named deterministically, created once, checked on resume."""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Collection
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna

from hwsearch.options import ConfigError
from hwsearch.storage.records import PROTOCOL, STUDY_CODE, STUDY_SEED, STUDY_SPACE, STUDY_SPEC
from hwsearch.training import TrainConfig, family

from .sampler import SeededRandomSampler
from .space import SearchSpace

SPEC_WAIT_S = 1.0  # how long a study may lack its configuration after its creation


def study_spec(config: TrainConfig) -> dict[str, Any]:
    """What a study records as its configuration: the protocol's fields, the objective and
    what lr_decay means."""
    return {**config.spec(), **PROTOCOL}


@functools.cache
def code_version() -> str:
    """The code that runs: ``git:<commit>`` (``+dirty`` with uncommitted changes) from a
    checkout, else ``hwsearch <version>``; recorded on each study it creates, so a published
    result names the code that produced it."""
    here = Path(__file__).resolve().parent
    try:
        git = ["git", "-C", str(here)]
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "-s", "-uno"],  # tracked files changed?
                               capture_output=True, text=True, timeout=30,
                               check=True).stdout.strip()
        return f"git:{commit}" + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        try:
            return f"hwsearch {metadata.version('highway-search')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def study_name(config: TrainConfig, prefix: str = "", existing: Collection[str] = ()) -> str:
    """The study of ``config``, as its family names it: ``mnist-highway-d50``,
    ``mnist-highway-10``, ``mnist-highway-10-w32``. A study that hwsearch 0.1 named otherwise
    (``mnist-mnist-highway-10-d10``) keeps its name when it is among ``existing`` and no study
    has the current one, so a database written then still resumes."""
    of = family(config.model)
    args = (prefix, config.dataset, config.depth, config.width)
    name, legacy = of.study_name(*args), of.legacy_study_name(*args)
    return legacy if legacy in existing and name not in existing else name


def check_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    config: TrainConfig,
    seed: int,
    space: SearchSpace,
    *,
    adopt: bool = False,
) -> bool:
    """True when the study exists (and is the same search); False when it does not. Reads
    only: a launch checks every study before it creates any."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    _check_ours(study, adopt)
    _check_same(study, study_spec(config), seed, space)
    return True


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    config: TrainConfig,
    seed: int,
    space: SearchSpace,
    *,
    adopt: bool = False,
) -> optuna.Study:
    """Create the study, or load it and insist it is the same search (else stop, touching
    nothing). A study made elsewhere is used only with ``adopt``, and then records ours."""
    sampler = SeededRandomSampler(seed)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
        _check_ours(study, adopt)
    except KeyError:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            direction="minimize",
            load_if_exists=True,
        )
    if STUDY_SPEC not in study.user_attrs:
        study.set_user_attr(STUDY_SPEC, study_spec(config))
        study.set_user_attr(STUDY_SEED, seed)
        study.set_user_attr(STUDY_SPACE, space.to_dict(config.model))
        study.set_user_attr(STUDY_CODE, code_version())
    _check_same(study, study_spec(config), seed, space)
    return study


def _check_ours(study: optuna.Study, adopt: bool) -> None:
    """A study without our recorded configuration was made elsewhere (``optuna
    create-study``, the dashboard): its trials may come from any objective. Refused unless
    adopted; one that maximises is refused always (our objective is a loss)."""
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        directions = ", ".join(d.name.lower() for d in study.directions)
        raise ConfigError(
            f"study {study.study_name!r} exists with direction {directions}; allowed: "
            "minimize (a single loss); use `study_prefix` to start a new one"
        )
    if not adopt and not _has_spec(study):
        raise ConfigError(
            f"study {study.study_name!r} exists but was not made by hwsearch (no recorded "
            "configuration); pass `adopt` to use it, or `study_prefix` to start a new one"
        )


def _has_spec(study: optuna.Study) -> bool:
    """Whether the study records our configuration. A launcher writes it just after creating
    the study, so an empty study without it may be another launcher's, a moment old: wait
    that moment before calling it foreign."""
    deadline = time.monotonic() + SPEC_WAIT_S
    while STUDY_SPEC not in study.user_attrs:
        if time.monotonic() > deadline or study.get_trials(deepcopy=False):
            return False
        time.sleep(0.05)
    return True


def _check_same(study: optuna.Study, spec: dict[str, Any], seed: int, space: SearchSpace) -> None:
    stored = study.user_attrs
    for key, want, have in (
        ("configuration", spec, stored.get(STUDY_SPEC)),
        ("seed", seed, stored.get(STUDY_SEED)),
        ("search space", space.to_dict(spec["model"]), stored.get(STUDY_SPACE)),
    ):
        if have is not None and have != want:
            diff = _first_difference(have, want) if isinstance(want, dict) else f"{have} vs {want}"
            raise ConfigError(
                f"study {study.study_name!r} exists with a different {key} ({diff}); "
                "use `study_prefix` to start a new one"
            )


def _first_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    for k in sorted(set(stored) | set(wanted)):
        if stored.get(k) != wanted.get(k):
            return f"{k}: stored {stored.get(k)!r}, asked {wanted.get(k)!r}"
    return "?"
