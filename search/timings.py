"""Where a launch's time goes: wall-clock marks of the launcher (from the process's first import
of hwsearch), and the workers' own seconds summed over packs (packs may run side by side, so
those sums can exceed the wall time they overlap). The launch shows them in one line at the
end (``hwsearch.app.progress``; benchmarks/protocol.py reads it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hwsearch import STARTED


@dataclass
class Timings:
    ray_ready: float | None = None  # wall seconds since start
    first_epoch: float | None = None  # first epoch report received
    fit_done: float | None = None
    data_seconds: float = 0.0  # workers loading data, summed over packs
    train_seconds: float = 0.0  # workers' epochs without their evaluations, summed
    eval_seconds: float = 0.0  # the objective's and the test set's evaluations, summed
    record_seconds: float = 0.0  # the launcher writing results to the database

    @staticmethod
    def now() -> float:
        return time.perf_counter() - STARTED
