"""Where a launch's time goes, said in one line at the end (benchmarks/protocol.py reads it).

Wall-clock marks of the launcher (from the process's first import of hwsearch), and the
workers' own seconds summed over packs (packs may run side by side, so those sums can exceed
the wall time they overlap).
"""

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

    def line(self) -> str:
        def at(mark: float | None) -> str:
            return "-" if mark is None else f"{mark:.1f} s"

        return (
            f"[hwsearch] time: Ray ready at {at(self.ray_ready)}, first epoch reported at "
            f"{at(self.first_epoch)}, packs done at {at(self.fit_done)}, total "
            f"{self.now():.1f} s; summed over packs: data {self.data_seconds:.1f} s, train "
            f"{self.train_seconds:.1f} s, evaluate {self.eval_seconds:.1f} s; record "
            f"{self.record_seconds:.1f} s"
        )
