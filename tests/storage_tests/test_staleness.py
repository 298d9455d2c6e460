"""When a RUNNING trial counts as lost, on SQLite and PostgreSQL: the grace period is its
owner's (recorded) heartbeat interval times GRACE_FACTOR (3), counted on the database's clock,
from the trial's last beat, or from its ask when it never beat."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage import records as rec
from hwtest.heartbeats import backdate_beat

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Grace periods here are 3 × 10 s or longer, so a trial just asked is inside its own whatever the
# load; a trial is made older by backdating its beat (hwtest.heartbeats), never by sleeping.


def _ask(store: StudyStorage, name: str, interval: float) -> int:
    study = optuna.load_study(study_name=name, storage=store.optuna)
    return store.ask(study, {}, lambda n: rec.ask_attrs(0, n, "owner", interval))[0]


def _state(store: StudyStorage, trial_id: int) -> TrialState:
    return store.optuna.get_trial(trial_id).state


def test_each_trial_has_its_owners_grace(storage_url: str, prefix: str) -> None:
    """A detecting launcher with a short interval does not fail a live trial whose owner beats
    slowly: the grace period is the owner's."""
    name = f"{prefix}g"
    store = open_storage(storage_url)
    optuna.create_study(study_name=name, storage=store.optuna)
    slow, quick = _ask(store, name, 60.0), _ask(store, name, 10.0)
    assert store.fail_stale(name, default_interval=1.0) == 0  # both just beat
    for trial_id in (slow, quick):
        backdate_beat(store.optuna.engine, trial_id, 100)  # past 3 × 10 s, inside 3 × 60 s
    assert store.fail_stale(name, default_interval=1.0) == 1
    assert _state(store, slow) == TrialState.RUNNING
    assert _state(store, quick) == TrialState.FAIL
    assert "heartbeat" in store.optuna.get_trial(quick).user_attrs[rec.OUTCOME]
    store.close()


def test_a_trial_that_never_beat_goes_stale_counted_from_its_ask(
    storage_url: str, prefix: str
) -> None:
    """Its owner died between the ask and its first heartbeat: the ask's own beat starts the
    grace period, so no launcher waits for it forever."""
    name = f"{prefix}n"
    store = open_storage(storage_url)
    optuna.create_study(study_name=name, storage=store.optuna)
    trial_id = _ask(store, name, 10.0)
    assert store.fail_stale(name, default_interval=10.0) == 0  # inside its grace period
    # Margins of 5 s either side: SQLite's datetime() drops the beat's fraction of a second, and
    # a loaded machine takes its time between the ask and the check.
    backdate_beat(store.optuna.engine, trial_id, 25)
    assert store.fail_stale(name, default_interval=10.0) == 0  # 25 s < 3 × 10 s
    backdate_beat(store.optuna.engine, trial_id, 10)
    assert store.fail_stale(name, default_interval=10.0) == 1  # 35 s > 3 × 10 s
    assert _state(store, trial_id) == TrialState.FAIL
    store.close()


def test_an_outside_ask_goes_stale_after_the_default_grace(storage_url: str, prefix: str) -> None:
    """A plain ``study.ask()`` (no beat, no recorded interval): its grace period starts when a
    launcher first sees it, with the launcher's interval."""
    name = f"{prefix}o"
    store = open_storage(storage_url)
    study = optuna.create_study(study_name=name, storage=store.optuna)
    orphan = store.trial_id(name, study.ask().number)
    assert store.fail_stale(name, default_interval=10.0) == 0  # first seen now: a beat is written
    backdate_beat(store.optuna.engine, orphan, 40)
    assert store.fail_stale(name, default_interval=10.0) == 1
    assert _state(store, orphan) == TrialState.FAIL
    store.close()


def test_state_and_outcome_are_one_write(storage_url: str, prefix: str) -> None:
    """A trial failed as stale has its outcome; its owner finishing it later changes neither
    (whoever finishes first wins, and says why in the same write)."""
    name = f"{prefix}w"
    store = open_storage(storage_url)
    optuna.create_study(study_name=name, storage=store.optuna)
    trial_id = _ask(store, name, 10.0)
    backdate_beat(store.optuna.engine, trial_id, 40)
    assert store.fail_stale(name, default_interval=10.0) == 1
    assert not rec.mark_completed(store, trial_id, 0.5)  # the owner comes back too late
    trial = store.optuna.get_trial(trial_id)
    assert trial.state == TrialState.FAIL and trial.value is None
    assert "heartbeat" in trial.user_attrs[rec.OUTCOME]
    store.close()


def test_heartbeats_are_compared_on_the_database_clock(
    pg_database: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's time zone is UTC-12 (as a server in another zone would give): beats and
    "now" both come from the database, so a fresh beat is fresh. Compared with this machine's
    UTC clock it would look 12 hours old."""
    from hwtest import pg_url

    monkeypatch.setenv("PGTZ", "Etc/GMT+12")  # libpq sets the session's TimeZone from it
    store = open_storage(pg_url(pg_database))
    with store.optuna.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "Etc/GMT+12"
    name = f"{prefix}c"
    optuna.create_study(study_name=name, storage=store.optuna)
    trial_id = _ask(store, name, 10.0)  # 30 s of grace, far from the 12 hours at stake
    store.record_heartbeat(trial_id)
    assert store.fail_stale(name, default_interval=10.0) == 0
    assert _state(store, trial_id) == TrialState.RUNNING
    store.close()
