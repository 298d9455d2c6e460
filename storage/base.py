"""The storage contract the search service relies on.

A :class:`StudyStorage` holds Optuna studies in the standard schema (so the ``optuna`` CLI and
optuna-dashboard read it as is), the trained weights of finished trials, and a per-study claim
lock that lets several launchers share a study without asking for more trials than it needs.
Implementations must be safe to use from several processes at once; a single instance is used
by one process, from the launcher's threads.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager

import optuna
from optuna.artifacts._protocol import ArtifactStore


class StudyStorage(abc.ABC):
    #: The URL with its password masked; safe for logs and output.
    display_url: str

    @property
    @abc.abstractmethod
    def optuna(self) -> optuna.storages.BaseStorage:
        """The Optuna storage, with heartbeats enabled so dead launchers' trials can be failed."""

    @property
    @abc.abstractmethod
    def artifacts(self) -> ArtifactStore:
        """Where trial weights go; lives in the same database, so nothing else must be shared."""

    @abc.abstractmethod
    def claim(self, study_name: str) -> AbstractContextManager[None]:
        """Exclusive across processes and machines for ``study_name`` while held."""

    @abc.abstractmethod
    def fail_stale(self, study: optuna.Study) -> int:
        """Fail the RUNNING trials of launchers that stopped beating; returns how many."""

    @abc.abstractmethod
    def study_names(self) -> list[str]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def studies(self) -> Iterator[optuna.Study]:
        for name in self.study_names():
            yield optuna.load_study(study_name=name, storage=self.optuna)
