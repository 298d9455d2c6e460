"""The trial record: how one trial of a search is stored in an Optuna study, in one place.

Everything that writes or reads a stored trial (the search service, the queries, the report,
the tests' builders) goes through these names and functions; nothing else spells a key.

Study user attributes
    ``spec`` (the configuration: the training protocol's fields and :data:`PROTOCOL`),
    ``seed`` (the study's sampling seed), ``search_space``, ``code_version`` (the code that
    created the study: ``git:<commit>``, with ``+dirty`` for uncommitted changes, or
    ``hwsearch <version>`` outside a checkout; absent in studies made before it was recorded).

Trial layout
    * params: ``lr``, ``momentum``, ``lr_decay``, ``activation``, and ``gate_bias`` (highway);
    * user attributes written at the ask: ``seed`` (:func:`trial_seed`), ``launcher``,
      ``heartbeat_interval`` (the owner's, in seconds: the grace period before another launcher
      may take the trial for lost is :data:`GRACE_FACTOR` times this), ``ask_token`` (unique
      per ask: a retried ask finds the trial its lost first answer made), ``pack_size``;
      then the Ray node it trained on: ``ray_node_id``, ``ray_node_ip``, ``hostname``;
    * per epoch, appended (never rewritten, so an E-epoch run writes O(E) bytes): the
      objective as the intermediate value at step = epoch (1-based), and the epoch's whole
      record as the user attribute ``epoch_00001``, ``epoch_00002``, … (see
      :func:`epoch_key`). A dict per epoch: ``epoch``, ``train_loss`` (the objective),
      ``train_accuracy``, ``test_accuracy`` (None unless the launch measured the test set
      every epoch), ``lr``, ``seconds`` and what the trainer adds. :func:`history` reads them
      back in order, in one call (they come with the trial);
    * the end, written in one transaction with the state (:func:`mark_completed`,
      :func:`mark_diverged`, :func:`mark_failed`): ``outcome`` is ``completed``,
      ``diverged`` (with ``diverged_epoch``) or the reason a trial was lost; a COMPLETE
      trial's ``test_accuracy``, that of its best epoch's weights (:func:`test_accuracy`).

States
    COMPLETE (value = the objective: the lowest full-training-set cross-entropy of any epoch);
    a run that diverged after finishing some epochs is COMPLETE too, with the best value of
    those epochs, its weights, ``outcome = diverged`` and ``diverged_epoch``; one that diverged
    before finishing any epoch is PRUNED (a finished member of the random search without a
    value); FAIL (lost to infrastructure, with ``outcome`` saying why; a launch replaces it).
    COMPLETE and PRUNED count as finished, so exact counts are unchanged.

Weights
    The artifact ``weights.pt`` of a COMPLETE trial among those its launch's policy keeps
    (``hwsearch.storage.keep``: by default the 5 best of the study), in the database or in
    the directory the study's ``artifact_dir`` attribute names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

# Study user attributes.
STUDY_SPEC = "spec"
STUDY_SEED = "seed"
STUDY_SPACE = "search_space"
STUDY_CODE = "code_version"

# Recorded in every study's spec beside its training configuration: what was minimised and
# what lr_decay means. The report compares studies only when these agree.
PROTOCOL = {
    "objective": "lowest whole-training-set cross-entropy of any epoch",
    "lr_decay": "factor over the whole run",
}
# What studies of hwsearch 0.1, which recorded neither, did.
LEGACY_PROTOCOL = {
    "objective": "lowest epoch-mean minibatch cross-entropy (hwsearch 0.1)",
    "lr_decay": "factor per epoch (hwsearch 0.1)",
}

# Trial user attributes.
SEED = "seed"
LAUNCHER = "launcher"
HEARTBEAT_INTERVAL = "heartbeat_interval"
ASK_TOKEN = "ask_token"
PACK_SIZE = "pack_size"
RAY_NODE_ID = "ray_node_id"
RAY_NODE_IP = "ray_node_ip"
HOSTNAME = "hostname"
NODE_KEYS = (RAY_NODE_ID, RAY_NODE_IP, HOSTNAME)
OUTCOME = "outcome"
DIVERGED_EPOCH = "diverged_epoch"
TEST_ACCURACY = "test_accuracy"
EPOCH_PREFIX = "epoch_"
LEGACY_HISTORY = "history"  # version 1 kept the whole history in one attribute

# Outcomes.
COMPLETED = "completed"
DIVERGED = "diverged"

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE = (TrialState.RUNNING, TrialState.WAITING)
GRACE_FACTOR = 3  # heartbeats a launcher may miss before its trials are taken for lost
DEFAULT_HEARTBEAT_S = 10  # a launch's default; for trials that recorded no interval
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class Counts:
    """A study's trials per state; ``diverged`` counts trials whose outcome is "diverged"."""

    complete: int
    pruned: int
    running: int
    failed: int
    diverged: int
    best: float | None

    @property
    def finished(self) -> int:
        return self.complete + self.pruned


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number`` (weights init and data order): a pure function, so a trial
    trains the same whoever runs it, alone or in a pack, first or as a replacement."""
    return (study_seed * 1_000_003 + number) % (2**31 - 1)


def epoch_key(epoch: int) -> str:
    """The user attribute of one epoch's record; zero-padded, so keys sort in epoch order."""
    return f"{EPOCH_PREFIX}{epoch:05d}"


# -- reading ----------------------------------------------------------------------------------


def history(trial: FrozenTrial) -> list[dict[str, Any]]:
    """The trial's per-epoch records, in epoch order."""
    attrs = trial.user_attrs
    rows = [dict(attrs[k]) for k in sorted(attrs) if k.startswith(EPOCH_PREFIX)]
    if not rows and isinstance(attrs.get(LEGACY_HISTORY), list):
        rows = [dict(r) for r in attrs[LEGACY_HISTORY]]
    return rows


def best_epoch(trial: FrozenTrial) -> dict[str, Any]:
    """The record of the epoch with the lowest training-set loss (the objective's epoch, whose
    weights are stored); empty for a trial without epochs."""
    epochs = history(trial)
    return min(epochs, key=lambda e: e["train_loss"]) if epochs else {}


def test_accuracy(trial: FrozenTrial, record: Mapping[str, Any] | None = None) -> float | None:
    """The test-set accuracy of the trial's stored model (its best epoch's weights), written
    when it completed; else that of ``record``, an epoch's record the caller has (a running
    trial measured every epoch), or by default the best epoch's: studies from before
    2026-12-06 measured the test set every epoch."""
    value = trial.user_attrs.get(TEST_ACCURACY)
    if value is not None:
        return float(value)
    return (record if record is not None else best_epoch(trial)).get(TEST_ACCURACY)


def outcome(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get(OUTCOME, ""))


def diverged_epoch(trial: FrozenTrial) -> int | None:
    value = trial.user_attrs.get(DIVERGED_EPOCH)
    return int(value) if value is not None else None


def node_ip(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get(RAY_NODE_IP) or "")


def count_trials(trials: Sequence[FrozenTrial]) -> Counts:
    """:class:`Counts` of trials already loaded (the storage answers the same by query)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return Counts(
        complete=len(complete),
        pruned=sum(t.state == TrialState.PRUNED for t in trials),
        running=sum(t.state in ACTIVE for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
        diverged=sum(outcome(t) == DIVERGED for t in trials),
        best=min((t.value for t in complete if t.value is not None), default=None),
    )


# -- writing ----------------------------------------------------------------------------------


# Run in the transaction that finishes a trial, when it wins: the trial's weights (keep.py).
Then = Callable[[Any], None] | None


class Recorder(Protocol):
    """What a record is written through (a ``StudyStorage``)."""

    @property
    def optuna(self) -> optuna.storages.BaseStorage: ...

    def write_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> bool: ...

    def finish_trial(
        self, trial_id: int, state: TrialState, value: float | None, attrs: Mapping[str, Any],
        then: Then = None,
    ) -> bool: ...


def ask_attrs(
    study_seed: int, number: int, launcher: str, heartbeat_interval: float
) -> dict[str, Any]:
    """What a trial records when it is asked for."""
    return {
        SEED: trial_seed(study_seed, number),
        LAUNCHER: launcher,
        HEARTBEAT_INTERVAL: heartbeat_interval,
    }


def record_epoch(store: Recorder, trial_id: int, record: Mapping[str, Any]) -> bool:
    """Append one epoch: its objective as the intermediate value, its record as an attribute.
    False when the trial has finished meanwhile (another launcher took it over)."""
    epoch = int(record["epoch"])
    try:
        store.optuna.set_trial_intermediate_value(trial_id, epoch, float(record["train_loss"]))
    except UpdateFinishedTrialError:
        return False
    return store.write_attrs(trial_id, {epoch_key(epoch): dict(record)})


def _tested(accuracy: float | None) -> dict[str, float]:
    return {TEST_ACCURACY: float(accuracy)} if accuracy is not None else {}


def mark_completed(
    store: Recorder, trial_id: int, value: float, then: Then = None,
    test: float | None = None,
) -> bool:
    """COMPLETE with ``value`` (and the stored model's ``test`` accuracy, if measured); False
    when the trial had already finished (e.g. taken over)."""
    attrs = {OUTCOME: COMPLETED, **_tested(test)}
    return store.finish_trial(trial_id, TrialState.COMPLETE, value, attrs, then)


def mark_diverged(
    store: Recorder, trial_id: int, epoch: int, best_value: float | None = None,
    then: Then = None, test: float | None = None,
) -> bool:
    """The run diverged at ``epoch``. With a finite best value from the epochs before, it is
    COMPLETE with that value (it reached it; the search objective is the best achieved) and
    its best epoch's ``test`` accuracy; diverged before finishing any epoch, it is PRUNED, with
    no value. Either way ``outcome`` says ``diverged``."""
    attrs = {OUTCOME: DIVERGED, DIVERGED_EPOCH: int(epoch)}
    if best_value is not None and math.isfinite(best_value):
        return store.finish_trial(trial_id, TrialState.COMPLETE, best_value,
                                  {**attrs, **_tested(test)}, then)
    return store.finish_trial(trial_id, TrialState.PRUNED, None, attrs)


def mark_failed(store: Recorder, trial_id: int, reason: str) -> bool:
    """FAIL, saying why; a launch replaces it."""
    return store.finish_trial(trial_id, TrialState.FAIL, None, {OUTCOME: reason})
