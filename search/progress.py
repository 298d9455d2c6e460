"""Progress of a launch, per study: trials done of total, best value so far, ETA."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class StudyProgress:
    target: int
    done: int
    best: float | None
    diverged: int = 0
    failed: int = 0


@dataclass
class Progress:
    studies: dict[str, StudyProgress]
    out: TextIO = field(default=sys.stderr)
    every: float = 5.0
    _start: float = field(default_factory=time.monotonic)
    _done_at_start: int = 0
    _last_print: float = 0.0

    def __post_init__(self) -> None:
        self._done_at_start = sum(s.done for s in self.studies.values())

    def finished(self, study: str, value: float | None, diverged: bool = False) -> None:
        s = self.studies[study]
        s.done += 1
        s.diverged += diverged
        if value is not None and (s.best is None or value < s.best):
            s.best = value
        self.maybe_print()

    def failed(self, study: str) -> None:
        self.studies[study].failed += 1
        self.maybe_print()

    def note(self, message: str) -> None:
        """One line about something the user should know, at once."""
        print(f"[hwsearch] {message}", file=self.out, flush=True)

    def eta_seconds(self) -> float | None:
        done_now = sum(s.done for s in self.studies.values()) - self._done_at_start
        remaining = sum(max(0, s.target - s.done) for s in self.studies.values())
        if remaining == 0:
            return 0.0
        if done_now <= 0:
            return None
        return remaining * (time.monotonic() - self._start) / done_now

    def maybe_print(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_print < self.every:
            return
        self._last_print = now
        eta = self.eta_seconds()
        total = sum(s.target for s in self.studies.values())
        done = sum(min(s.done, s.target) for s in self.studies.values())
        eta_text = "?" if eta is None else _hms(eta)
        lines = [
            f"[hwsearch] {done}/{total} trials done, elapsed {_hms(now - self._start)}, "
            f"ETA {eta_text}"
        ]
        for name, s in self.studies.items():
            best = "-" if s.best is None else f"{s.best:.4g}"
            extra = f", {s.diverged} diverged" if s.diverged else ""
            extra += f", {s.failed} failed (replaced)" if s.failed else ""
            lines.append(f"  {name}: {min(s.done, s.target)}/{s.target} done, best {best}{extra}")
        print("\n".join(lines), file=self.out, flush=True)


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
