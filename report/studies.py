"""Reading a storage into plain records, so every figure works from the same frozen snapshot.

A study says what configuration it is through its ``spec`` user attr (see
``hwsearch.storage.records``); studies made by other tools may lack it, so the name
(``[prefix]dataset-model-dDEPTH``) is the fallback, when its trials' parameters are those the
family samples. Studies that say neither, or whose trials tune other parameters (made by
another tool), are left out of the report as not made by hwsearch, and the page says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from hwsearch.storage import StudyStorage
from hwsearch.storage.records import STUDY_SPEC, TEST_ACCURACY, test_accuracy
from hwsearch.training import DATASETS, FAMILIES, MODELS, Family

_DEPTH = re.compile(r"-d(\d+)$")


def _as_is(trial: FrozenTrial) -> FrozenTrial:
    return trial


class StudyRecord(NamedTuple):
    """One configuration of the search and all its trials, as stored.

    ``trials`` may be light (without their per-epoch records: see
    ``StudyStorage.light_trials``); ``fetch`` reads one of them whole, for the few trials a
    figure draws a curve of or loads weights for."""

    name: str
    dataset: str
    model: str
    depth: int
    spec: dict[str, Any]
    trials: list[FrozenTrial]
    fetch: Callable[[FrozenTrial], FrozenTrial] = _as_is

    @property
    def limit_train(self) -> int | None:
        value = self.spec.get("limit_train")
        return int(value) if value is not None else None

    @property
    def family(self) -> Family | None:
        """The study's model family; None for a model this version does not know."""
        return FAMILIES.get(self.model)

    @property
    def in_figure1(self) -> bool:
        """Figure 1 and the claims compare it (a plain or highway study)."""
        return self.family is not None and self.family.in_figure1

    def test_accuracy(self, trial: FrozenTrial) -> float | None:
        """``trial``'s stored model's test accuracy: on the light trial when its completion
        recorded it, else (an older study) from its best epoch's record, read whole."""
        return test_accuracy(trial if TEST_ACCURACY in trial.user_attrs else self.fetch(trial))

    @property
    def in_table1(self) -> bool:
        """Table 1 sets it beside the papers (a conv study)."""
        return self.family is not None and self.family.in_table1

    @property
    def label(self) -> str:
        return f"{self.model}, {self.depth} layers"


def spec_of(name: str, user_attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The stored spec, else what the name says, else None (not a study of this search)."""
    spec = user_attrs.get(STUDY_SPEC)
    if isinstance(spec, dict) and {"dataset", "model", "depth"} <= set(spec):
        return dict(spec)
    match = _DEPTH.search(name)
    if match is None:
        return None
    stem = name[: match.start()]
    for dataset in sorted(DATASETS, key=len, reverse=True):  # "fashion-mnist" before "mnist"
        for model in MODELS:
            if stem.endswith(f"{dataset}-{model}"):
                return {"dataset": dataset, "model": model, "depth": int(match[1])}
    return None


def load_studies(store: StudyStorage, dataset: str) -> tuple[list[StudyRecord], list[str]]:
    """All studies of ``dataset`` (sorted by model, depth, name) and the names of unknown ones."""
    records: list[StudyRecord] = []
    unknown: list[str] = []
    for summary in store.optuna.get_all_studies():
        spec = spec_of(summary.study_name, summary.user_attrs)
        if spec is None:
            unknown.append(summary.study_name)
            continue
        if spec["dataset"] != dataset:
            continue
        name = summary.study_name
        trials = store.light_trials(name)
        if STUDY_SPEC not in summary.user_attrs and not _params_fit(spec, trials):
            unknown.append(name)  # named like ours, but its trials tune something else
            continue
        records.append(
            StudyRecord(name, dataset, str(spec["model"]), int(spec["depth"]), spec,
                        trials, _fetcher(store, name))
        )
    records.sort(key=lambda r: (r.model, r.depth, r.name))
    return records, sorted(unknown)


def _params_fit(spec: dict[str, Any], trials: list[FrozenTrial]) -> bool:
    """Whether a study known only by its name holds this search's trials: each trial's
    parameters are among those its family samples (a study of another tool's, say one
    parameter ``x``, is never drawn as a net of some depth)."""
    family = FAMILIES.get(str(spec["model"]))
    allowed = set(family.samples) if family is not None else set()
    return all(t.params and set(t.params) <= allowed for t in trials)


def _fetcher(store: StudyStorage, name: str) -> Callable[[FrozenTrial], FrozenTrial]:
    def fetch(trial: FrozenTrial) -> FrozenTrial:
        return store.optuna.get_trial(store.trial_id(name, trial.number))

    return fetch


def complete_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Finished trials with a usable objective; diverged (pruned) trials have none."""
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def ranked(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials, best (lowest training cross-entropy) first; ties by trial number."""
    return sorted(complete_trials(trials), key=lambda t: (float(t.value), t.number))  # type: ignore[arg-type]


def best_trial(trials: list[FrozenTrial]) -> FrozenTrial | None:
    best = ranked(trials)
    return best[0] if best else None


def in_memory_study(trials: list[FrozenTrial]) -> optuna.Study:
    """A throwaway study holding ``trials``, for Optuna's analysis functions (no storage I/O)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
    try:
        study = optuna.create_study(direction="minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    study.add_trials(trials)
    return study
