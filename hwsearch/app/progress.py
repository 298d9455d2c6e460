"""What a launch shows while it runs: where the studies stand, progress per study (trials done
of total, best value so far, ETA) every few seconds, notes, and where the time went."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from hwsearch.search.timings import Timings
from hwsearch.storage import Counts


@dataclass
class StudyProgress:
    target: int
    done: int
    best: float | None
    diverged: int = 0
    failed: int = 0


@dataclass
class Progress:
    """The launch's events (``hwsearch.search.events.LaunchEvents``) as lines on ``out``."""

    studies: dict[str, StudyProgress] = field(default_factory=dict)
    out: TextIO = field(default=sys.stderr)
    every: float = 5.0
    _start: float = field(default_factory=time.monotonic)
    _done_at_start: int = 0
    _last_print: float = 0.0

    def __post_init__(self) -> None:
        self._done_at_start = sum(s.done for s in self.studies.values())

    def begin(self, storage: str, pack: int, target: int, counts: Mapping[str, Counts]) -> None:
        self.studies = {name: StudyProgress(target, c.finished, c.best, c.diverged)
                        for name, c in counts.items()}
        self._start = time.monotonic()
        self._done_at_start = sum(s.done for s in self.studies.values())
        self._say(f"[hwsearch] storage {storage}; {len(counts)} studies x {target} trials; "
                  f"pack {pack}")

    def finished(self, study: str, value: float | None, diverged: bool = False) -> None:
        s = self.studies[study]
        s.done += 1
        s.diverged += diverged
        if value is not None and (s.best is None or value < s.best):
            s.best = value
        self.tick()

    def failed(self, study: str) -> None:
        self.studies[study].failed += 1
        self.tick()

    def note(self, message: str) -> None:
        """One line about something the user should know, at once."""
        self._say(f"[hwsearch] {message}")

    def done(self, timings: Timings) -> None:
        self._say(timings_line(timings))

    def eta_seconds(self) -> float | None:
        done_now = sum(s.done for s in self.studies.values()) - self._done_at_start
        remaining = sum(max(0, s.target - s.done) for s in self.studies.values())
        if remaining == 0:
            return 0.0
        if done_now <= 0:
            return None
        return remaining * (time.monotonic() - self._start) / done_now

    def tick(self, force: bool = False) -> None:
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
        self._say("\n".join(lines))

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def timings_line(t: Timings) -> str:
    """Where a launch's time went, in one line (benchmarks/protocol.py parses it)."""

    def at(mark: float | None) -> str:
        return "-" if mark is None else f"{mark:.1f} s"

    return (
        f"[hwsearch] time: Ray ready at {at(t.ray_ready)}, first epoch reported at "
        f"{at(t.first_epoch)}, packs done at {at(t.fit_done)}, total {t.now():.1f} s; summed "
        f"over packs: data {t.data_seconds:.1f} s, train {t.train_seconds:.1f} s, evaluate "
        f"{t.eval_seconds:.1f} s; record {t.record_seconds:.1f} s"
    )


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
