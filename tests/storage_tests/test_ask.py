"""The ask keeps a study's count exact by itself (issue 21, class 11a), on SQLite and
PostgreSQL: it counts the study's finished and running trials again in its own transaction,
under a lock on the study's row, whatever became of the claim; and an ask whose commit went
through but whose answer was lost with the connection is not made twice when retried."""

from __future__ import annotations

import logging
import threading

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from hwsearch.storage import open_storage
from hwsearch.storage import records as rec
from hwtest import pg_admin_connect, pg_url

optuna.logging.set_verbosity(optuna.logging.WARNING)
DIST = {"x": optuna.distributions.FloatDistribution(0, 1)}


def test_asks_without_any_claim_stop_at_the_target(storage_url: str, prefix: str) -> None:
    """Six askers, each with a storage of its own and no claim at all (as when a restarting
    server took every advisory lock with it), ask until told the study is full: exactly the
    target, numbered 0..target-1, and finished trials count as taken."""
    name, target = f"{prefix}full", 24
    first = open_storage(storage_url)
    study = optuna.create_study(study_name=name, storage=first.optuna)
    done = first.ask(study, DIST, lambda n: {}, target=target)
    assert done is not None
    first.finish_trial(done[0], TrialState.COMPLETE, 0.5, {rec.OUTCOME: rec.COMPLETED})
    failed = first.ask(study, DIST, lambda n: {}, target=target)
    assert failed is not None  # a failed trial does not count: it is replaced
    first.finish_trial(failed[0], TrialState.FAIL, None, {rec.OUTCOME: "lost"})
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def asker(i: int) -> None:
        try:
            store = open_storage(storage_url)
            mine = optuna.load_study(study_name=name, storage=store.optuna)
            start.wait()
            while store.ask(mine, DIST, lambda n: {"launcher": f"asker-{i}"},
                            target=target) is not None:
                pass
            store.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=asker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    got = optuna.load_study(study_name=name, storage=storage_url).get_trials()
    taken = [t for t in got if t.state != TrialState.FAIL]
    assert len(taken) == target
    assert sorted(t.number for t in got) == list(range(target + 1))  # no number twice
    assert first.ask(study, DIST, lambda n: {}, target=target) is None
    first.close()


def test_an_ask_retried_after_its_answer_was_lost_is_not_made_twice(
    pg_database: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server commits the ask; then the connection dies before the client hears of it
    (the backend is terminated with the COMMIT's answer still owed). The retry finds the trial
    the first try made."""
    name = f"{prefix}lost"
    store = open_storage(pg_url(pg_database), retry_for=60)
    study = optuna.create_study(study_name=name, storage=store.optuna,
                                sampler=optuna.samplers.RandomSampler(seed=1))
    armed = [True]
    engine = store.optuna.engine

    @sa.event.listens_for(engine, "before_cursor_execute")
    def mark_the_ask(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.startswith("INSERT INTO trial_heartbeats"):
            conn.info["ask"] = True

    @sa.event.listens_for(engine, "commit")
    def lose_the_answer(conn: sa.Connection) -> None:
        if not (armed and conn.info.pop("ask", False)):
            return
        armed.clear()
        dbapi = conn.connection.dbapi_connection
        dbapi.commit()  # the ask is stored
        dbapi.execute("SELECT 1")  # a transaction again: SQLAlchemy's COMMIT goes to the server
        with pg_admin_connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [dbapi.info.backend_pid])

    with caplog.at_level(logging.WARNING, logger="hwsearch.storage.retry"):
        asked = store.ask(study, DIST, lambda n: rec.ask_attrs(0, n, "me", 10), target=5)
    assert not armed  # the fault happened
    assert "retrying" in caplog.text
    assert asked is not None
    trial_id, number, params = asked
    got = optuna.load_study(study_name=name, storage=pg_url(pg_database)).get_trials()
    assert [t.number for t in got] == [number]
    assert store.optuna.get_trial(trial_id).number == number
    assert got[0].params == params and got[0].user_attrs[rec.LAUNCHER] == "me"
    store.close()
