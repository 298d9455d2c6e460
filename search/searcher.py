"""A Ray Tune searcher over the :class:`PackPlanner`: Tune schedules, the planner decides.

Each Tune trial carries one pack. This adapter turns Tune's calls into the planner's (suggest
→ ``next_pack``, results → ``record_epoch``, completion → ``finish``), fetches the pack's
weights from the :class:`~.sink.WeightSink`, and keeps Tune's polling from hammering the database.
"""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.tune.search import Searcher

from .events import LaunchEvents
from .messages import EpochReport, ErrorReport, FinalReport, PackConfig, parse_result
from .planner import Pack, PackPlanner
from .timings import Timings

IDLE_S = 1.0  # nothing to hand out: wait this long before asking the database again
POLL_S = 0.2  # and keep Tune's suggest loop from spinning meanwhile


class PackSearcher(Searcher):
    def __init__(
        self, planner: PackPlanner, events: LaunchEvents, sink: Any,
        timings: Timings | None = None,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self.planner, self.events, self.sink = planner, events, sink
        self.timings = timings or Timings()
        self.live: dict[str, Pack] = {}
        self._configs: dict[str, PackConfig] = {}
        self._idle_until = 0.0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self.events.tick()
        if self.planner.gave_up:
            return Searcher.FINISHED
        pack = self.planner.next_pack() if time.monotonic() >= self._idle_until else None
        if pack is not None:
            self.live[trial_id] = pack
            config = self.planner.pack_config(pack)
            self._configs[trial_id] = config
            return config.to_config()
        if not self.live and self.planner.all_done():
            return Searcher.FINISHED
        if time.monotonic() >= self._idle_until:
            self._idle_until = time.monotonic() + IDLE_S
        time.sleep(POLL_S)  # others' trials still running, or ours: wait for them
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pack = self.live.get(trial_id)
        message = parse_result(result)
        if pack is None or message is None:
            return
        if isinstance(message, ErrorReport):
            pack.error = message.message
        elif isinstance(message, EpochReport):
            t = self.timings
            if t.first_epoch is None:
                t.first_epoch = t.now()
            t.data_seconds += message.data_seconds
            t.train_seconds += message.seconds - message.eval_seconds
            t.eval_seconds += message.eval_seconds
            start = time.perf_counter()
            self.planner.record_epoch(pack, message)
            t.record_seconds += time.perf_counter() - start
            for entry in message.trials:
                if entry.number in pack.finished:  # ended (a first-epoch divergence): counted
                    continue
                loss = entry.record.get("train_loss") if entry.record is not None else None
                self.events.epoch(pack.study, entry.number, message.epoch, loss)
            self.events.tick()
        elif isinstance(message, FinalReport):
            self.timings.eval_seconds += message.eval_seconds
            self._finish(trial_id, message)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in self.live:
            message = None if error else parse_result(result or {})
            self._finish(trial_id, message if isinstance(message, FinalReport) else None)

    def _finish(self, trial_id: str, final: FinalReport | None) -> None:
        start = time.perf_counter()
        pack = self.live.pop(trial_id)
        config = self._configs.pop(trial_id)
        weights = {}
        if final is not None:
            keys = [config.weights_key(t.number) for t in final.trials if t.has_weights]
            blobs = ray.get([self.sink.pop.remote(k) for k in keys])
            weights = {
                t.number: blob
                for t, blob in zip([t for t in final.trials if t.has_weights], blobs, strict=True)
            }
        self.planner.finish(pack, final, weights, where=f" (Tune trial {trial_id})")
        self.timings.record_seconds += time.perf_counter() - start
        self.events.tick()

    def release(self, reason: str) -> None:
        """On the way out: hand back what this launcher holds, so a rerun need not wait."""
        for pack in self.live.values():
            self.planner.release_pack(pack, reason)
        self.live.clear()
        self.planner.release(reason)

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its search algorithm into the experiment directory; ours carries the
        storage (and with it the database URL), so it pickles to nothing. The database is the
        state: a new launcher resumes from it, not from Tune's files."""
        return {}

    def save_to_dir(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to save: the database is the state. (Pickling would carry the URL.)"""

    def restore_from_dir(self, *args: Any, **kwargs: Any) -> None:
        pass
