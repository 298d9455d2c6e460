"""A Ray Tune searcher that takes its trials from Optuna studies, K at a time.

Tune schedules; Optuna samples and keeps the record. Each Tune trial carries a pack of Optuna
trials of one study and one activation. The searcher asks only for what a study still needs
(its target minus finished and running trials, everyone's), under the study's claim lock, so
concurrent launchers never overshoot. A pack lost to infrastructure has its unfinished trials
marked FAIL with the reason; the next count sees the gap and asks for replacements.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher

from hwsearch.storage import StudyStorage

from .heartbeat import Heartbeat
from .progress import Progress
from .recording import record_epoch, upload_weights
from .studies import counts

log = logging.getLogger(__name__)


@dataclass
class StudyPlan:
    study: optuna.Study
    target: int
    distributions: dict[str, BaseDistribution]
    train: dict[str, Any]  # TrainConfig fields, sent to workers
    seed: int


@dataclass
class Pack:
    study: str
    trials: list[optuna.Trial]
    histories: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)  # trial numbers told already
    node_recorded: bool = False
    error: str | None = None  # what the trainable reported before it failed


def trial_seed(study_seed: int, number: int) -> int:
    return (study_seed * 1_000_003 + number) % (2**31 - 1)


class PackSearcher(Searcher):
    def __init__(
        self,
        store: StudyStorage,
        plans: dict[str, StudyPlan],
        pack_size: int,
        heartbeat: Heartbeat,
        progress: Progress,
        launcher_id: str,
        sink: Any,
        max_failed_packs: int = 5,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self.store, self.plans, self.pack_size = store, plans, pack_size
        self.heartbeat, self.progress, self.launcher_id, self.sink = (
            heartbeat,
            progress,
            launcher_id,
            sink,
        )
        self.buffers: dict[tuple[str, str], list[optuna.Trial]] = defaultdict(list)
        self.live: dict[str, Pack] = {}
        self._idle_until = 0.0
        self.failed_packs_in_a_row = 0
        self.last_error: str | None = None
        self.max_failed_packs = max_failed_packs

    # -- Tune's interface -------------------------------------------------------------------

    @property
    def gave_up(self) -> bool:
        """Packs keep failing: something systematic (a bug, bad data on the workers), not bad
        luck. Replacing trials forever would only fill the study with failures."""
        return self.failed_packs_in_a_row >= self.max_failed_packs

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self.progress.maybe_print()
        if self.gave_up:
            return Searcher.FINISHED
        pack = self._next_pack()
        if pack is not None:
            self.live[trial_id] = pack
            plan = self.plans[pack.study]
            for t in pack.trials:
                self.store.optuna.set_trial_user_attr(t._trial_id, "pack_size", len(pack.trials))
            return {
                "study": pack.study,
                "numbers": [t.number for t in pack.trials],
                "params": [self._hyperparams(plan, t) for t in pack.trials],
                "train": plan.train,
            }
        if not self.live and self._all_done():
            return Searcher.FINISHED
        time.sleep(0.2)  # others' trials still running, or ours: wait for them
        return None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pack = self.live.get(trial_id)
        if pack is not None and "error" in result:
            pack.error = str(result["error"])
        if pack is None or "trials" not in result:
            return
        by_number = {t.number: t for t in pack.trials}
        storage = self.store.optuna
        if not pack.node_recorded:
            for t in pack.trials:
                for key in ("ray_node_id", "ray_node_ip", "hostname"):
                    storage.set_trial_user_attr(t._trial_id, key, result.get(key))
            pack.node_recorded = True
        for entry in result["trials"]:
            number = entry["number"]
            if number in pack.finished:
                continue
            trial = by_number[number]
            if "record" in entry:
                history = pack.histories.setdefault(number, [])
                history.append(entry["record"])
                record_epoch(storage, trial._trial_id, history)
            if entry.get("diverged_epoch") is not None:
                self._tell_diverged(pack, trial, entry["diverged_epoch"])
        self.progress.maybe_print()

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pack = self.live.pop(trial_id, None)
        if pack is None:
            return
        self.failed_packs_in_a_row = self.failed_packs_in_a_row + 1 if error else 0
        if error:
            self.last_error = pack.error or "the worker was lost"
        final = {e["number"]: e for e in (result or {}).get("final", [])} if not error else {}
        for trial in pack.trials:
            if trial.number in pack.finished:
                continue
            entry = final.get(trial.number)
            if entry is None:
                cause = pack.error or "the worker was lost"
                reason = f"infrastructure failure: {cause} (Tune trial {trial_id}); replaced"
                self._tell_failed(pack, trial, reason)
            elif entry["diverged_epoch"] is not None:
                self._tell_diverged(pack, trial, entry["diverged_epoch"])
            else:
                self._tell_complete(pack, trial, entry)

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its search algorithm into the experiment directory; ours carries the
        storage (and with it the database URL), so it pickles to nothing. The database is the
        state: a new launcher resumes from it, not from Tune's files."""
        return {}

    def save_to_dir(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to save: the database is the state. (Pickling would carry the URL.)"""

    def restore_from_dir(self, *args: Any, **kwargs: Any) -> None:
        pass

    # -- telling Optuna ---------------------------------------------------------------------

    def _finish(self, pack: Pack, trial: optuna.Trial, **tell: Any) -> None:
        pack.finished.add(trial.number)
        self.plans[pack.study].study.tell(trial, **tell)
        self.heartbeat.discard(trial._trial_id)

    def _tell_complete(self, pack: Pack, trial: optuna.Trial, entry: dict[str, Any]) -> None:
        value = float(entry["best_train_loss"])
        blob = ray.get(self.sink.pop.remote(f"{pack.study}/{trial.number}"))
        if blob is None or not math.isfinite(value):
            self._tell_failed(pack, trial, "finished without weights or a finite loss; replaced")
            return
        upload_weights(self.store, trial, blob)
        self.store.optuna.set_trial_user_attr(trial._trial_id, "outcome", "completed")
        self._finish(pack, trial, values=value)
        self.progress.finished(pack.study, value)

    def _tell_diverged(self, pack: Pack, trial: optuna.Trial, epoch: int) -> None:
        storage = self.store.optuna
        storage.set_trial_user_attr(trial._trial_id, "outcome", "diverged")
        storage.set_trial_user_attr(trial._trial_id, "diverged_epoch", int(epoch))
        self._finish(pack, trial, state=TrialState.PRUNED)
        self.progress.finished(pack.study, None, diverged=True)

    def _tell_failed(self, pack: Pack, trial: optuna.Trial, reason: str) -> None:
        self.store.optuna.set_trial_user_attr(trial._trial_id, "outcome", reason)
        self._finish(pack, trial, state=TrialState.FAIL)
        self.progress.failed(pack.study)

    def fail_unfinished(self, reason: str) -> None:
        """On the way out: hand back what this launcher holds, so a rerun need not wait."""
        for pack in list(self.live.values()):
            for trial in pack.trials:
                if trial.number not in pack.finished:
                    self._tell_failed(pack, trial, reason)
        self.live.clear()
        for (study, _), trials in list(self.buffers.items()):
            pack = Pack(study, trials)
            for trial in trials:
                self._tell_failed(pack, trial, reason)
        self.buffers.clear()

    # -- asking Optuna ----------------------------------------------------------------------

    def _hyperparams(self, plan: StudyPlan, trial: optuna.Trial) -> dict[str, Any]:
        p = trial.params
        hp = {
            "lr": p["lr"],
            "momentum": p["momentum"],
            "decay_rate": p["decay_rate"],
            "activation": p["activation"],
            "seed": trial_seed(plan.seed, trial.number),
        }
        if "gate_bias" in p:
            hp["gate_bias"] = p["gate_bias"]
        return hp

    def _pop_full_buffer(self, flush_study: str | None = None) -> Pack | None:
        for (study, _activation), trials in self.buffers.items():
            if trials and (len(trials) >= self.pack_size or study == flush_study):
                pack_trials = trials[: self.pack_size]
                del trials[: self.pack_size]
                return Pack(study, pack_trials)
        return None

    def _next_pack(self) -> Pack | None:
        pack = self._pop_full_buffer()
        if pack is not None or time.monotonic() < self._idle_until:
            return pack
        for name in sorted(self.plans, key=lambda n: -self._need_hint(n)):
            exhausted = self._ask_into_buffers(name)
            pack = self._pop_full_buffer(flush_study=name if exhausted else None)
            if pack is not None:
                return pack
        self._idle_until = time.monotonic() + 1.0  # nothing to hand out: don't poll the DB hard
        return None

    def _need_hint(self, name: str) -> int:
        plan = self.plans[name]
        return plan.target - self.progress.studies[name].done

    def _ask_into_buffers(self, name: str) -> bool:
        """Ask for trials until a pack fills or the study needs no more; True when it needs none."""
        plan = self.plans[name]
        with self.store.claim(name):
            self.store.fail_stale(plan.study)
            c = counts(plan.study.get_trials(deepcopy=False))
            need = plan.target - c.finished - c.running
            while need > 0:
                trial = plan.study.ask(plan.distributions)
                self.heartbeat.add(trial._trial_id)
                storage = self.store.optuna
                storage.set_trial_user_attr(
                    trial._trial_id, "seed", trial_seed(plan.seed, trial.number)
                )
                storage.set_trial_user_attr(trial._trial_id, "launcher", self.launcher_id)
                storage.set_trial_user_attr(trial._trial_id, "history", [])
                buffer = self.buffers[(name, trial.params["activation"])]
                buffer.append(trial)
                need -= 1
                if len(buffer) >= self.pack_size:
                    return need == 0
        return True

    def _all_done(self) -> bool:
        if any(self.buffers.values()):
            return False
        for plan in self.plans.values():
            with self.store.claim(plan.study.study_name):
                self.store.fail_stale(plan.study)
                c = counts(plan.study.get_trials(deepcopy=False))
            if c.finished < plan.target:
                return False
        return True
