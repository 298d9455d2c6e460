"""Database faults under the storage: a server restart and an outage on a PostgreSQL server of
the test's own, SQLite busy, and a full disk. No Ray; seconds each."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from hwsearch.storage import StorageError, open_storage
from hwsearch.storage import records as rec
from hwsearch.storage.retry import RETRY_ENV, budget_from_env, is_transient
from hwtest import PG_PASSWORD, run_hwsearch, stored_trials
from hwtest.disk import fill, tmpfs
from hwtest.pgserver import PGServer

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study_with_trials(store, name: str, n: int) -> None:
    optuna.create_study(study_name=name, storage=store.optuna)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(n):
        stored_trials.add_finished_trial(store, name, {"x": 0.5}, dist,
                               [{"epoch": 1, "train_loss": 1.0 + i}])


class LogicalClock:
    """Time for a :class:`Retry` that passes only when it sleeps: its pauses are recorded and
    nobody waits for them."""

    def __init__(self) -> None:
        self.now, self.pauses = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_server_restart_is_retried(pg_server: PGServer) -> None:
    """A call made while the server is down waits for it and then succeeds: a restart passes.
    The server comes back only after the call has failed once against it (its first pause)."""
    store = open_storage(pg_server.url("hw", PG_PASSWORD), retry_for=60)
    _study_with_trials(store, "s", 2)
    trial_id = store.ask(optuna.load_study(study_name="s", storage=store.optuna),
                         {}, lambda n: {"launcher": "me"})[0]
    events: list[str] = []

    def sleep(seconds: float) -> None:
        if not events:
            events.append("failed while down")
            pg_server.start()
            events.append("server back")
        time.sleep(seconds)

    store.retry.sleep = sleep
    pg_server.stop()  # every pooled connection is now dead
    assert store.counts("s").finished == 2  # waited for the server
    events.append("answered")
    assert events == ["failed while down", "server back", "answered"]
    assert rec.mark_completed(store, trial_id, 0.5)  # writes go through too
    assert store.counts("s").complete == 3
    store.close()


def test_outage_past_the_budget_is_one_line_and_fails_fast_after(pg_server: PGServer) -> None:
    """Transient faults are retried with pauses of 0.1 s doubling to at most 2 s, until the
    budget is spent (on a logical clock: nobody waits); then one line, and later calls are
    tried once, not waited out again."""
    store = open_storage(pg_server.url("hw", PG_PASSWORD), retry_for=10)
    _study_with_trials(store, "s", 1)
    time_ = LogicalClock()
    store.retry.clock, store.retry.sleep = time_.clock, time_.sleep
    pg_server.stop()
    with pytest.raises(StorageError) as e:
        store.counts("s")
    assert time_.pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 0.9])
    assert time_.now == pytest.approx(10.0)
    message = str(e.value)
    assert "\n" not in message and PG_PASSWORD not in message
    assert "failed for 10 s" in message and "rerun" in message
    with pytest.raises(StorageError):  # gave up: the cleanup's calls are tried once
        store.write_attrs(1, {"a": 1})
    assert len(time_.pauses) == 9 and store.retry.gave_up
    pg_server.start()
    assert store.counts("s").finished == 1  # and back when the server is
    assert not store.retry.gave_up
    store.close()


def test_opening_a_storage_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong host is an error at once: no pause of the retry's is ever taken while opening."""
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)  # what a Retry made now would sleep with
    with pytest.raises(StorageError, match="cannot open storage"):
        open_storage(f"postgresql+psycopg://u:{PG_PASSWORD}@127.0.0.1:1/db?connect_timeout=5")
    assert pauses == []


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_ENV, "4")
    assert budget_from_env() == 4.0
    for bad in ("-1", "soon", "inf"):
        monkeypatch.setenv(RETRY_ENV, bad)
        with pytest.raises(StorageError, match=f"{RETRY_ENV} must be a number of seconds"):
            budget_from_env()
    monkeypatch.delenv(RETRY_ENV)
    assert budget_from_env() == 60.0


def test_advisory_claim_times_out(pg_server: PGServer) -> None:
    url = pg_server.url("hw")
    holder, waiter = open_storage(url), open_storage(url, claim_timeout=1.5)
    with holder.claim("s"):
        with pytest.raises(StorageError, match=r"waited 1\.5 s .*another launcher holds it"):
            with waiter.claim("s"):
                pass
    with waiter.claim("s"):  # released: taken at once
        pass
    holder.close()
    waiter.close()


def _advisory_waiters(url: str) -> int:
    """Sessions queued in pg_advisory_lock on the server (requested, not granted)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = "
                                        "'advisory' AND NOT granted")).scalar_one()
    finally:
        engine.dispose()


def test_an_advisory_claim_waits_its_turn_not_forever(pg_server: PGServer) -> None:
    """A launcher that releases the claim and asks again at once does not starve a waiter:
    PostgreSQL queues the waiters, so the waiter queued during the hog's first round gets the
    claim next (polling pg_try_advisory_lock lost round after round; under 16 launchers one
    waited out its 120 s timeout, benchmarks/load.py)."""
    url = pg_server.url("hw")
    hog, waiter = open_storage(url), open_storage(url)
    order: list[str] = []
    hog_has_it = threading.Event()

    def hog_loop() -> None:
        for i in range(8):
            with hog.claim("s"):
                order.append(f"hog {i}")
                if i == 0:
                    hog_has_it.set()
                    deadline = time.monotonic() + 120  # a hang guard
                    while _advisory_waiters(url) == 0 and time.monotonic() < deadline:
                        time.sleep(0.05)  # until the waiter is queued behind this round

    thread = threading.Thread(target=hog_loop)
    thread.start()
    assert hog_has_it.wait(120)
    with waiter.claim("s"):
        order.append("waiter")
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert order[:3] == ["hog 0", "waiter", "hog 1"], order  # its turn came at the first release
    assert len(order) == 9
    hog.close()
    waiter.close()


def test_sqlite_busy_is_transient_and_waited_out(tmp_path: Path) -> None:
    """Another writer holds the database while an ask writes: the ask waits (it cannot finish
    while the lock is held) and goes through once the lock is released."""
    db = tmp_path / "busy.db"
    store = open_storage(f"sqlite:///{db}")
    _study_with_trials(store, "s", 1)
    blocker = sqlite3.connect(db, timeout=0, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    impatient = sa.create_engine(f"sqlite:///{db}", connect_args={"timeout": 0})
    with pytest.raises(sa.exc.OperationalError) as locked:
        with impatient.begin() as conn:
            conn.execute(sa.text("DELETE FROM studies"))
    assert "locked" in str(locked.value) and is_transient(locked.value)

    writing = threading.Event()

    def on_execute(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writing.set()

    sa.event.listen(store.optuna.engine, "before_cursor_execute", on_execute)
    asked: list[int] = []
    study = optuna.load_study(study_name="s", storage=store.optuna)
    thread = threading.Thread(target=lambda: asked.append(
        store.ask(study, {}, lambda n: {"launcher": "me"})[0]))
    thread.start()
    assert writing.wait(120), "the ask never wrote"
    thread.join(timeout=1.0)
    assert thread.is_alive() and not asked  # held up by the lock
    blocker.rollback()
    thread.join(timeout=120)
    assert asked and store.optuna.get_trial(asked[0]).state == TrialState.RUNNING
    blocker.close()
    impatient.dispose()
    store.close()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own (root only)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    with tmpfs(mount, "size=2m"):
        yield mount


def test_sqlite_disk_full_is_one_line_and_loses_nothing(small_fs: Path, mnist_dir: Path) -> None:
    url = f"sqlite:///{small_fs / 'full.db'}"
    store = open_storage(url)
    _study_with_trials(store, "s", 3)
    trial_id = store.ask(optuna.load_study(study_name="s", storage=store.optuna), {},
                         lambda n: {"launcher": "me"})[0]
    filler = fill(small_fs)
    big = {f"epoch_{i:05d}": {"pad": "x" * 20_000} for i in range(100)}  # ~2 MB: cannot fit
    with pytest.raises(StorageError) as e:
        store.write_attrs(trial_id, big)
    assert "full" in str(e.value) and "\n" not in str(e.value) and "nothing stored" in str(e.value)
    # The CLI says the same in one line, exit 2.
    out = run_hwsearch("launch", "--storage", url, "--dataset", "mnist", "--data-dir",
                       str(mnist_dir), "--models", "plain", "--depths", "3", "--trials", "1",
                       "--study-prefix", "new-", timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "full" in out.stderr, out.stderr
    store.close()
    filler.unlink()
    again = open_storage(url)
    with again.optuna.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    c = again.counts("s")
    assert (c.complete, c.running) == (3, 1)  # nothing stored was lost
    assert again.write_attrs(trial_id, {"after": 1})  # and it writes again
    again.close()
