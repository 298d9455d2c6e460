"""Heartbeats for the trials this launcher holds, so other launchers can tell them from a dead
launcher's (whose trials stop beating, turn stale after the grace period and are failed)."""

from __future__ import annotations

import logging
import threading

from hwsearch.storage import StudyStorage

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, storage: StudyStorage, interval: float) -> None:
        self._storage, self._interval = storage, interval
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._missing = False
        self._thread = threading.Thread(target=self._run, name="hwsearch-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def add(self, trial_id: int) -> None:
        with self._lock:  # its first beat was written by the ask, in the same transaction
            self._trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._trial_ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = list(self._trial_ids)
            failed = None
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)
                except Exception as e:  # a missed beat is survivable; the next one may land
                    failed = e
            if failed is not None and not self._missing:  # one line per outage, not per beat
                log.warning("heartbeats failed (%s); trying again every %g s",
                            type(failed).__name__, self._interval)
            elif failed is None and self._missing:
                log.warning("heartbeats land again")
            self._missing = failed is not None
