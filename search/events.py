"""What the search tells its user about, as calls on an object the caller hands in: the search
itself never prints (the application layer shows these events)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hwsearch.storage import Counts

from .timings import Timings


class Events(Protocol):
    """What the planner tells the user about (progress)."""

    def finished(self, study: str, value: float | None, diverged: bool = False,
                 trial: int | None = None) -> None: ...

    def failed(self, study: str, trial: int | None = None) -> None: ...

    def note(self, message: str) -> None: ...


class LaunchEvents(Events, Protocol):
    """What a launch tells its user, besides the planner's events."""

    def begin(self, storage: str, pack: int, target: int, counts: Mapping[str, Counts],
              epochs: int = 1, costs: Mapping[str, float] | None = None) -> None:
        """The studies are open: each one's counts, before anything runs; each trial plans
        ``epochs`` epochs; ``costs``: a trial-epoch's relative cost per study (for the ETA)."""

    def epoch(self, study: str, trial: int, epoch: int, train_loss: float | None) -> None:
        """Trial ``trial`` of ``study`` reported epoch ``epoch`` (its training loss): the unit
        of work that progress and the ETA count."""

    def tick(self, force: bool = False) -> None:
        """A moment to show progress (``force``: show it now)."""

    def done(self, timings: Timings) -> None:
        """The search has stopped (on every path out); where its time went."""
