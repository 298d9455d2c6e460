"""What the search tells its user about, as calls on an object the caller hands in: the search
itself never prints (the application layer shows these events)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hwsearch.storage import Counts

from .timings import Timings


class Events(Protocol):
    """What the planner tells the user about (progress)."""

    def finished(self, study: str, value: float | None, diverged: bool = False) -> None: ...

    def failed(self, study: str) -> None: ...

    def note(self, message: str) -> None: ...


class LaunchEvents(Events, Protocol):
    """What a launch tells its user, besides the planner's events."""

    def begin(self, storage: str, pack: int, target: int, counts: Mapping[str, Counts]) -> None:
        """The studies are open: each one's counts, before anything runs."""

    def tick(self, force: bool = False) -> None:
        """A moment to show progress (``force``: show it now)."""

    def done(self, timings: Timings) -> None:
        """The search has stopped (on every path out); where its time went."""
