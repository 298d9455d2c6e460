"""What a launch shows while it runs: where the studies stand, progress per study and in all
every few seconds, notes, and where the time went.

Progress and the ETA count work, not trials: trial-epochs done out of trial-epochs planned
(each study's target times the epochs of a trial). A finished trial counts all its planned
epochs (a diverged one stops early: its work is done); a running one the epochs it reported;
a failed one nothing (its replacement does the work again). So the count moves with every
epoch report, not in jumps when a pack of trials finishes at once.

The ETA weighs each study's trial-epochs by their cost (the planner's, from each family's
FLOPs per trial): a launch runs the costliest packs first, so unweighted counts would at first
project the cheap studies at the expensive ones' pace."""

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
    running: dict[int, int] = field(default_factory=dict)  # trial number -> epochs reported
    cost: float = 1.0  # of one trial-epoch, relative to the other studies'

    def work(self, epochs: int) -> int:
        """Trial-epochs done: finished trials whole, running ones by their epochs."""
        return (min(self.done, self.target) * epochs
                + sum(min(n, epochs) for n in self.running.values()))


@dataclass
class Progress:
    """The launch's events (``hwsearch.search.events.LaunchEvents``) as lines on ``out``."""

    studies: dict[str, StudyProgress] = field(default_factory=dict)
    out: TextIO = field(default=sys.stderr)
    every: float = 5.0
    epochs: int = 1  # planned per trial
    _start: float = field(default_factory=time.monotonic)
    _cost_at_start: float = 0.0
    _last_print: float = 0.0

    def __post_init__(self) -> None:
        self._cost_at_start = self.cost_done()

    def begin(self, storage: str, pack: int, target: int, counts: Mapping[str, Counts],
              epochs: int = 1, costs: Mapping[str, float] | None = None) -> None:
        self.epochs = max(1, epochs)
        costs = costs or {}
        self.studies = {name: StudyProgress(target, c.finished, c.best, c.diverged,
                                            cost=float(costs.get(name, 1.0)))
                        for name, c in counts.items()}
        self._start = time.monotonic()
        self._cost_at_start = self.cost_done()
        self._say(f"[hwsearch] storage {storage}; {len(counts)} studies x {target} trials x "
                  f"{self.epochs} epochs; pack {pack}")

    def epoch(self, study: str, trial: int, epoch: int, train_loss: float | None) -> None:
        s = self.studies.get(study)
        if s is not None:
            s.running[trial] = max(epoch, s.running.get(trial, 0))

    def finished(self, study: str, value: float | None, diverged: bool = False,
                 trial: int | None = None) -> None:
        s = self.studies[study]
        s.done += 1
        s.diverged += diverged
        s.running.pop(trial if trial is not None else -1, None)
        if value is not None and (s.best is None or value < s.best):
            s.best = value
        # No tick here: a trial ends inside a report that may hold its pack-mates' epochs too;
        # the caller ticks once the whole report is counted, so no line shows half of it.

    def failed(self, study: str, trial: int | None = None) -> None:
        s = self.studies[study]
        s.failed += 1
        s.running.pop(trial if trial is not None else -1, None)

    def note(self, message: str) -> None:
        """One line about something the user should know, at once."""
        self._say(f"[hwsearch] {message}")

    def done(self, timings: Timings) -> None:
        self._say(timings_line(timings))

    def work_done(self) -> int:
        return sum(s.work(self.epochs) for s in self.studies.values())

    def work_planned(self) -> int:
        return sum(s.target * self.epochs for s in self.studies.values())

    def cost_done(self) -> float:
        """:meth:`work_done` with each study's trial-epochs weighed by their cost."""
        return sum(s.work(self.epochs) * s.cost for s in self.studies.values())

    def cost_planned(self) -> float:
        return sum(s.target * self.epochs * s.cost for s in self.studies.values())

    def eta_seconds(self) -> float | None:
        """The remaining cost at the pace this launch has kept so far."""
        if self.work_planned() - self.work_done() <= 0:
            return 0.0
        done_now = self.cost_done() - self._cost_at_start
        if done_now <= 0:
            return None
        remaining = self.cost_planned() - self.cost_done()
        return remaining * (time.monotonic() - self._start) / done_now

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_print < self.every:
            return
        self._last_print = now
        eta = self.eta_seconds()
        trials = sum(s.target for s in self.studies.values())
        done = sum(min(s.done, s.target) for s in self.studies.values())
        planned = self.work_planned()
        share = f" ({100 * self.work_done() / planned:.0f}%)" if planned else ""
        eta_text = "?" if eta is None else _hms(eta)
        lines = [
            f"[hwsearch] {self.work_done()}/{planned} trial-epochs done{share}, {done}/{trials} "
            f"trials done, elapsed {_hms(now - self._start)}, ETA {eta_text}"
        ]
        for name, s in self.studies.items():
            best = "-" if s.best is None else f"{s.best:.4g}"
            extra = f", {len(s.running)} running" if s.running else ""
            extra += f", {s.diverged} diverged" if s.diverged else ""
            extra += f", {s.failed} failed (replaced)" if s.failed else ""
            lines.append(f"  {name}: {s.work(self.epochs)}/{s.target * self.epochs} epochs, "
                         f"{min(s.done, s.target)}/{s.target} trials done, best {best}{extra}")
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
