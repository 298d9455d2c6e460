"""Which trials to ask for, how to group them into packs, and how to record what came back.

The planner is the search's bookkeeping, apart from Ray: it works on any
:class:`StudyStorage` (an in-memory SQLite one in its unit tests) and knows nothing of Tune.

* **Exact counts.** A study is asked for only what it still needs: its target minus its
  finished and running trials, everyone's, counted under the study's claim lock, so
  concurrent launchers never overshoot.
* **Replacement.** A trial lost to infrastructure is marked FAIL with the reason; the next
  count sees the gap and asks for a replacement. So are trials of launchers that stopped
  beating (``fail_stale``).
* **Grouping.** Trials wait in a buffer per study until a pack is full, or the study needs no
  more; a pack mixes activations (the packed net gives each trial its own).
* **Systematic failures.** After ``max_failed_packs`` failed packs in a row the planner gives
  up (:attr:`gave_up`): replacing trials forever would only fill the study with failures.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import optuna
from optuna.distributions import BaseDistribution

from hwsearch.storage import StudyStorage
from hwsearch.storage import records as rec
from hwsearch.storage.keep import DEFAULT_KEEP, KeepPolicy, WeightKeeper
from hwsearch.training import Hyperparams

from .events import Events
from .messages import EpochReport, FinalReport, PackConfig

# A trial's parameters that are hyperparameters (its seed is derived, not sampled).
_HYPERPARAMS = frozenset(f.name for f in fields(Hyperparams)) - {"seed"}

log = logging.getLogger(__name__)


class TrialHolder(Protocol):
    """Keeps the trials a launcher holds alive (heartbeats)."""

    def add(self, trial_id: int) -> None: ...

    def discard(self, trial_id: int) -> None: ...


@dataclass
class StudyPlan:
    study: optuna.Study
    target: int
    distributions: dict[str, BaseDistribution]
    train: dict[str, Any]  # TrainConfig fields, sent to workers
    seed: int
    cost: float = 1.0  # of one trial beside another study's (its family's trial_flops)

    @property
    def name(self) -> str:
        return self.study.study_name


@dataclass(frozen=True)
class PlannedTrial:
    number: int
    trial_id: int
    params: dict[str, Any]


@dataclass
class Pack:
    study: str
    trials: list[PlannedTrial]
    finished: set[int] = field(default_factory=set)  # trial numbers recorded as finished
    node_recorded: bool = False
    error: str | None = None  # what the trainable reported before it failed
    with_epochs: set[int] = field(default_factory=set)  # trials with a recorded epoch

    def unfinished(self) -> list[PlannedTrial]:
        return [t for t in self.trials if t.number not in self.finished]


class PackPlanner:
    def __init__(
        self,
        store: StudyStorage,
        plans: Mapping[str, StudyPlan],
        pack_size: int,
        *,
        holder: TrialHolder,
        events: Events,
        launcher_id: str,
        heartbeat_interval: float,
        max_failed_packs: int = 5,
        keep: KeepPolicy | None = None,
    ) -> None:
        self.store, self.plans, self.pack_size = store, dict(plans), pack_size
        self.keeper = WeightKeeper(store, keep or KeepPolicy.parse(DEFAULT_KEEP))
        self.holder, self.events = holder, events
        self.launcher_id, self.heartbeat_interval = launcher_id, heartbeat_interval
        self.max_failed_packs = max_failed_packs
        self.buffers: dict[str, list[PlannedTrial]] = defaultdict(list)
        self.failed_packs_in_a_row = 0
        self.last_error: str | None = None
        self._done: dict[str, int] = {}  # finished trials per study, as last counted
        self._release_failed = False

    # -- asking -----------------------------------------------------------------------------

    @property
    def gave_up(self) -> bool:
        return self.failed_packs_in_a_row >= self.max_failed_packs

    def next_pack(self) -> Pack | None:
        """A full pack from the buffers, else ask the costliest studies first, the neediest
        among equals; None when nothing can be handed out now (everything asked for is
        running). Largest first: the last packs to run are then the cheapest, so no core
        waits long at the end for another's one big pack."""
        pack = self._pop_buffer()
        if pack is not None:
            return pack
        for name in sorted(self.plans, key=lambda n: (-self.plans[n].cost,
                                                      self._done.get(n, 0) - self.plans[n].target)):
            exhausted = self._ask_into_buffers(name)
            pack = self._pop_buffer(flush_study=name if exhausted else None)
            if pack is not None:
                return pack
        return None

    def pack_config(self, pack: Pack) -> PackConfig:
        """What a worker needs for ``pack``; records each trial's pack size."""
        plan = self.plans[pack.study]
        for t in pack.trials:
            self.store.write_attrs(t.trial_id, {rec.PACK_SIZE: len(pack.trials)})
        return PackConfig(
            pack.study,
            [t.number for t in pack.trials],
            [self._hyperparams(plan, t) for t in pack.trials],
            plan.train,
        )

    def all_done(self) -> bool:
        """Every study has its target of finished trials (and nothing is buffered)."""
        if any(self.buffers.values()):
            return False
        for name, plan in self.plans.items():
            with self.store.claim(name):
                self.store.fail_stale(name, self.heartbeat_interval)
                finished = self.store.counts(name).finished
            self._done[name] = finished
            if finished < plan.target:
                return False
        return True

    def _pop_buffer(self, flush_study: str | None = None) -> Pack | None:
        for study, trials in self.buffers.items():
            if trials and (len(trials) >= self.pack_size or study == flush_study):
                pack_trials = trials[: self.pack_size]
                del trials[: self.pack_size]
                return Pack(study, pack_trials)
        return None

    def _ask_into_buffers(self, name: str) -> bool:
        """Ask for trials until a pack fills or the study needs no more; True when it needs
        none."""
        plan = self.plans[name]
        with self.store.claim(name):
            self.store.fail_stale(name, self.heartbeat_interval)
            c = self.store.counts(name)
            self._done[name] = c.finished
            need = plan.target - c.finished - c.running
            while need > 0:
                asked = self.store.ask(
                    plan.study, plan.distributions,
                    lambda n: rec.ask_attrs(plan.seed, n, self.launcher_id,
                                            self.heartbeat_interval),
                    target=plan.target,  # counted again under the study's row lock
                )
                if asked is None:  # another launcher asked meanwhile (a claim lost, say)
                    return True
                trial_id, number, params = asked
                self.holder.add(trial_id)
                buffer = self.buffers[name]
                buffer.append(PlannedTrial(number, trial_id, params))
                need -= 1
                if len(buffer) >= self.pack_size:
                    return need == 0
        return True

    @staticmethod
    def _hyperparams(plan: StudyPlan, trial: PlannedTrial) -> dict[str, Any]:
        # What the space sampled (a conv study samples no activation or lr_decay: the worker
        # takes those from the model's recipe) and the trial's seed.
        hp = {k: v for k, v in trial.params.items() if k in _HYPERPARAMS}
        hp["seed"] = rec.trial_seed(plan.seed, trial.number)
        return hp

    # -- recording --------------------------------------------------------------------------

    def record_epoch(self, pack: Pack, report: EpochReport) -> None:
        if not pack.node_recorded:
            node = {k: getattr(report.node, k) for k in rec.NODE_KEYS}
            for t in pack.trials:
                self.store.write_attrs(t.trial_id, node)
            pack.node_recorded = True
        by_number = {t.number: t for t in pack.trials}
        for entry in report.trials:
            trial = by_number[entry.number]
            if trial.number in pack.finished:
                continue
            if entry.record is not None:
                if not rec.record_epoch(self.store, trial.trial_id, entry.record):
                    self._end(pack, trial, won=False)
                    continue
                pack.with_epochs.add(trial.number)
            if entry.diverged_epoch is not None and trial.number not in pack.with_epochs:
                # Diverged in its first epoch: no value to wait for. A later divergence keeps
                # its best epoch, whose weights come with the pack's final report.
                self._diverged(pack, trial, entry.diverged_epoch, None, None)

    def finish(
        self,
        pack: Pack,
        final: FinalReport | None,
        weights: Mapping[int, bytes | None],
        where: str = "",
    ) -> None:
        """Record the end of ``pack``: ``final`` is None when the worker failed or was lost."""
        failed = final is None
        self.failed_packs_in_a_row = self.failed_packs_in_a_row + 1 if failed else 0
        if failed:
            self.last_error = pack.error or "the worker was lost"
        entries = {e.number: e for e in final.trials} if final is not None else {}
        for trial in pack.unfinished():
            entry = entries.get(trial.number)
            if entry is None:
                cause = pack.error or "the worker was lost"
                self._failed(pack, trial, f"infrastructure failure: {cause}{where}; replaced")
            elif entry.diverged_epoch is not None:
                self._diverged(pack, trial, entry.diverged_epoch, entry.best_train_loss,
                               weights.get(trial.number), entry.test_accuracy)
            else:
                self._completed(pack, trial, entry.best_train_loss, weights.get(trial.number),
                                entry.test_accuracy)

    def release(self, reason: str) -> None:
        """Fail what this launcher still holds (buffered or in live packs), so a rerun need
        not wait for the grace period. Never raises: it runs on the way out."""
        for trials in self.buffers.values():
            for trial in trials:
                self.holder.discard(trial.trial_id)
        self.buffers.clear()
        # Every trial this launcher asked for and did not finish (buffered, in a live pack,
        # or asked mid-stop and never buffered) carries its launcher id: fail them all at once.
        for name in self.plans:
            self._safely(lambda n=name: self.store.release_trials(n, self.launcher_id, reason))

    def release_pack(self, pack: Pack, reason: str) -> None:
        for trial in pack.unfinished():
            self._safely(lambda t=trial: self._failed(pack, t, reason))

    def _safely(self, action: Any) -> None:
        try:
            action()
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            if not self._release_failed:  # once: the database is likely down for them all
                self.events.note(f"could not hand back trials on the way out ({e}); "
                                 "they go stale after the grace period and are replaced")
            self._release_failed = True

    def _end(self, pack: Pack, trial: PlannedTrial, won: bool) -> bool:
        pack.finished.add(trial.number)
        self.holder.discard(trial.trial_id)
        if not won:
            self.events.note(
                f"trial {trial.number} of {pack.study} was taken over by another launcher "
                "(failed as stale while this one was silent); its result is dropped"
            )
        return won

    def _completed(
        self, pack: Pack, trial: PlannedTrial, value: float, blob: bytes | None,
        test: float | None,
    ) -> None:
        if blob is None or not math.isfinite(value):
            self._failed(pack, trial, "finished without weights or a finite loss; replaced")
            return
        # Completed and, if the policy keeps them, its weights stored, in one transaction.
        won = self.keeper.finish(pack.study, trial.trial_id, value, blob, lambda then: (
            rec.mark_completed(self.store, trial.trial_id, value, then, test)))
        if self._end(pack, trial, won):
            self.events.finished(pack.study, value, trial=trial.number)

    def _diverged(
        self, pack: Pack, trial: PlannedTrial, epoch: int, best: float | None,
        blob: bytes | None, test: float | None = None,
    ) -> None:
        value = best if best is not None and math.isfinite(best) and blob is not None else None
        won = self.keeper.finish(pack.study, trial.trial_id, value, blob, lambda then: (
            rec.mark_diverged(self.store, trial.trial_id, epoch, value, then, test)))
        if self._end(pack, trial, won):
            self.events.finished(pack.study, value, diverged=True, trial=trial.number)

    def _failed(self, pack: Pack, trial: PlannedTrial, reason: str) -> None:
        if self._end(pack, trial, rec.mark_failed(self.store, trial.trial_id, reason)):
            self.events.failed(pack.study, trial=trial.number)
