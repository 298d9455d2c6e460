"""The trial record: what the writers store is what the readers read, on both backends."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from hwsearch.storage import open_storage
from hwsearch.storage import records as rec
from hwtest import stored_trials
from hwtest.stored_trials import add_finished_trial, finished_trial

DISTS = {"lr": FloatDistribution(1e-6, 1.0, log=True),
         "activation": CategoricalDistribution(["relu", "tanh"])}


def epochs(*losses: float) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": v, "running_loss": v + 0.1, "test_accuracy": 0.9}
            for i, v in enumerate(losses)]


def test_whole_trials_and_counts(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    name = f"{prefix}s"
    optuna.create_study(study_name=name, storage=store.optuna)
    params = {"lr": 0.1, "activation": "tanh"}
    ids = [add_finished_trial(store, name, params, DISTS, epochs(0.5, 0.2, 0.3)),
           add_finished_trial(store, name, params, DISTS, epochs(0.4), diverged_epoch=2),
           add_finished_trial(store, name, params, DISTS, [], diverged_epoch=1)]
    assert ids == [store.trial_id(name, n) for n in range(3)]
    done, late, early = ids
    trials = {store.trial_id(name, t.number): t
              for t in store.optuna.get_all_trials(store.study_id(name))}
    t = trials[done]
    assert (t.state, t.value, rec.outcome(t)) == (TrialState.COMPLETE, 0.2, rec.COMPLETED)
    assert rec.history(t) == epochs(0.5, 0.2, 0.3)  # in epoch order, one call
    assert t.intermediate_values == {1: 0.5, 2: 0.2, 3: 0.3}
    assert (trials[late].state, trials[late].value, rec.diverged_epoch(trials[late])) == (
        TrialState.COMPLETE, 0.4, 2)
    assert trials[early].state == TrialState.PRUNED and trials[early].value is None
    c = store.counts(name)
    assert (c.complete, c.pruned, c.diverged, c.finished, c.best) == (2, 1, 2, 3, 0.2)
    assert c == rec.count_trials(list(trials.values()))  # the query and the loaded trials agree
    store.close()


def test_epochs_are_appended_and_finished_trials_are_read_only(
    storage_url: str, prefix: str
) -> None:
    store = open_storage(storage_url)
    name = f"{prefix}a"
    study = optuna.create_study(study_name=name, storage=store.optuna)
    trial_id = store.trial_id(name, study.ask().number)
    for record in epochs(0.9, 0.6):
        assert rec.record_epoch(store, trial_id, record)
    assert rec.mark_completed(store, trial_id, 0.6)
    assert not rec.mark_failed(store, trial_id, "late")  # first finisher wins
    assert not rec.record_epoch(store, trial_id, epochs(0.9, 0.6, 0.5)[-1])
    t = store.optuna.get_trial(trial_id)
    assert rec.history(t) == epochs(0.9, 0.6) and rec.outcome(t) == rec.COMPLETED
    assert sum(k.startswith(rec.EPOCH_PREFIX) for k in t.user_attrs) == 2
    store.close()


def test_legacy_history_is_still_read() -> None:
    legacy = optuna.trial.create_trial(
        value=0.1, params={}, distributions={},
        user_attrs={rec.LEGACY_HISTORY: [{"epoch": 1, "train_loss": 0.1}]})
    assert rec.history(legacy) == [{"epoch": 1, "train_loss": 0.1}]


def test_many_trials_at_once_store_what_one_at_a_time_does(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    one, many = f"{prefix}one", f"{prefix}many"
    for name in (one, many):
        optuna.create_study(study_name=name, storage=store.optuna)
    params = {"lr": 0.01, "activation": "relu"}
    made = [finished_trial(params, DISTS, epochs(0.5, 0.2)),
            finished_trial(params, DISTS, epochs(0.4), diverged_epoch=2),
            finished_trial(params, DISTS, [], diverged_epoch=1, attrs={rec.PACK_SIZE: 3})]
    for t in made:
        store.optuna.create_new_trial(store.study_id(one), template_trial=t)
    add_finished_trial(store, many, params, DISTS, epochs(0.9))  # numbering goes on from it
    ids = stored_trials.add_finished_trials(store, many, made)
    assert ids == [store.trial_id(many, n) for n in (1, 2, 3)]

    def stored(name: str, skip: int) -> list[tuple]:
        return [(t.number - skip, t.state, t.value, t.params, t.distributions, t.user_attrs,
                 t.intermediate_values, t.datetime_start, t.datetime_complete)
                for t in store.optuna.get_all_trials(store.study_id(name))[skip:]]

    assert stored(many, 1) == stored(one, 0)
    assert store.counts(many).finished == 4 and store.best_number(many) == 1
    store.close()
