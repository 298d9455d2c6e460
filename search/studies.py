"""Studies: one per configuration, named deterministically, created once, checked on resume."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from hwsearch.training import ConfigError

from .recording import FINISHED
from .sampler import SeededRandomSampler
from .settings import StudySpec
from .space import SearchSpace

SPEC_ATTR, SEED_ATTR, SPACE_ATTR = "spec", "seed", "search_space"


def open_study(
    storage: optuna.storages.BaseStorage, name: str, spec: StudySpec, seed: int, space: SearchSpace
) -> optuna.Study:
    """Create the study, or load it and insist it is the same search (else stop, touching
    nothing)."""
    sampler = SeededRandomSampler(seed)
    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            direction="minimize",
            load_if_exists=True,
        )
        if SPEC_ATTR not in study.user_attrs:
            study.set_user_attr(SPEC_ATTR, spec.to_attrs())
            study.set_user_attr(SEED_ATTR, seed)
            study.set_user_attr(SPACE_ATTR, space.to_dict())
    _check_same(study, spec, seed, space)
    return study


def _check_same(study: optuna.Study, spec: StudySpec, seed: int, space: SearchSpace) -> None:
    stored = study.user_attrs
    for key, want, have in (
        ("configuration", spec.to_attrs(), stored.get(SPEC_ATTR)),
        ("seed", seed, stored.get(SEED_ATTR)),
        ("search space", space.to_dict(), stored.get(SPACE_ATTR)),
    ):
        if have is not None and have != want:
            diff = _first_difference(have, want) if isinstance(want, dict) else f"{have} vs {want}"
            raise ConfigError(
                f"study {study.study_name!r} exists with a different {key} ({diff}); "
                "use --study-prefix to start a new one"
            )


def _first_difference(stored: dict, wanted: dict) -> str:
    for k in sorted(set(stored) | set(wanted)):
        if stored.get(k) != wanted.get(k):
            return f"{k}: stored {stored.get(k)!r}, asked {wanted.get(k)!r}"
    return "?"


@dataclass(frozen=True)
class Counts:
    complete: int
    diverged: int
    running: int
    failed: int
    best: float | None

    @property
    def finished(self) -> int:
        return self.complete + self.diverged


def counts(trials: list[FrozenTrial]) -> Counts:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return Counts(
        complete=len(complete),
        diverged=sum(t.state == TrialState.PRUNED for t in trials),
        running=sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        best=min((t.value for t in complete if t.value is not None), default=None),
    )


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)
