"""The storage contract the search service relies on.

A :class:`StudyStorage` holds Optuna studies in the standard schema (so the ``optuna`` CLI and
optuna-dashboard read it as is), the trained weights of finished trials, and a per-study claim
lock that lets several launchers share a study without asking for more trials than it needs.
Implementations must be safe to use from several processes at once; a single instance is used
by one process, from the launcher's threads. Bookkeeping (counts, staleness, finishing a
trial) is answered by queries that never load trial bodies, so its cost does not grow with
the size of a study's history.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState


class ArtifactStore(Protocol):
    """Optuna's artifact-store protocol (``optuna.artifacts`` does not export it)."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


@dataclass(frozen=True)
class Counts:
    """A study's trials per state; ``diverged`` counts trials whose outcome is "diverged"."""

    complete: int
    pruned: int
    running: int
    failed: int
    diverged: int
    best: float | None

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


class StudyStorage(abc.ABC):
    #: The URL with its password masked; safe for logs and output.
    display_url: str

    @property
    @abc.abstractmethod
    def optuna(self) -> optuna.storages.BaseStorage:
        """The Optuna storage, for Optuna's own API (studies, asks, attributes)."""

    @property
    @abc.abstractmethod
    def artifacts(self) -> ArtifactStore:
        """Where trial weights go; lives in the same database, so nothing else must be shared."""

    @abc.abstractmethod
    def claim(self, study_name: str) -> AbstractContextManager[None]:
        """Exclusive across processes and machines for ``study_name`` while held."""

    @abc.abstractmethod
    def study_names(self) -> list[str]: ...

    @abc.abstractmethod
    def study_id(self, study_name: str) -> int:
        """The study's id; :class:`KeyError` when there is none of that name."""

    @abc.abstractmethod
    def counts(self, study_name: str) -> Counts:
        """Trials per state and the best complete value, by aggregate queries."""

    @abc.abstractmethod
    def trial_id(self, study_name: str, number: int) -> int: ...

    @abc.abstractmethod
    def ask(
        self,
        study: optuna.Study,
        distributions: Mapping[str, BaseDistribution],
        attrs: Callable[[int], Mapping[str, Any]],
    ) -> tuple[int, int, dict[str, Any]]:
        """A new RUNNING trial of ``study`` with its parameters drawn by the study's sampler,
        the user attributes ``attrs(number)`` and its first heartbeat (the database's clock):
        ``(trial_id, number, params)``. Without
        ``Study.ask``, which loads every trial of the study to serve its cache."""

    @abc.abstractmethod
    def write_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> bool:
        """Set several user attributes of a RUNNING trial in one transaction; False, and
        nothing written, when it has finished (finished trials are read-only)."""

    @abc.abstractmethod
    def finish_trial(
        self, trial_id: int, state: TrialState, value: float | None, attrs: Mapping[str, Any]
    ) -> bool:
        """Finish a RUNNING trial: state, value and user attributes in one transaction.

        False, and nothing written, when the trial had already finished (say another launcher
        took it over): whoever finishes a trial first wins, and says why in the same write.
        """

    @abc.abstractmethod
    def fail_stale(self, study_name: str, default_interval: float) -> int:
        """Fail the study's RUNNING trials whose launcher stopped beating; returns how many.

        A trial is stale when its last heartbeat is older than ``GRACE_FACTOR`` times its
        owner's recorded heartbeat interval (``default_interval`` for trials that recorded
        none), on the database's clock. :meth:`ask` writes a trial's first beat, so the grace
        period of one whose owner never beat counts from its start; a trial asked elsewhere
        (no beat at all) starts its grace period when a launcher first sees it.
        """

    @abc.abstractmethod
    def release_trials(self, study_name: str, launcher: str, reason: str) -> int:
        """Fail the study's RUNNING trials asked by ``launcher`` (its recorded id), saying
        ``reason``; returns how many. A launcher that stops hands its trials back this way,
        including one asked but not yet handed to a pack when the stop came."""

    @abc.abstractmethod
    def light_trials(
        self, study_name: str, numbers: tuple[int, int] | None = None
    ) -> list[FrozenTrial]:
        """Every trial (or those numbered ``numbers[0] <= n < numbers[1]``) without its
        per-epoch records (only the last intermediate value), for whole-study views whose
        cost must not grow with the histories."""

    @abc.abstractmethod
    def best_number(self, study_name: str) -> int | None:
        """The best complete trial's number, by an indexed query."""

    @abc.abstractmethod
    def last_epochs(
        self, study_name: str, numbers: tuple[int, int] | None = None
    ) -> dict[int, tuple[int, dict[str, Any]]]:
        """Per trial number: its number of recorded epochs and its last epoch's record."""

    @abc.abstractmethod
    def record_heartbeat(self, trial_id: int) -> None:
        """Tell other launchers that this trial's owner is alive (the database's clock)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def studies(self) -> Iterator[optuna.Study]:
        for name in self.study_names():
            yield optuna.load_study(study_name=name, storage=self.optuna)
