"""Database faults under the storage: a server restart and an outage on a PostgreSQL server of
the test's own, SQLite busy, and a full disk. No Ray; seconds each."""

from __future__ import annotations

import os
import sqlite3
import subprocess
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
from hwsearch.storage.retry import is_transient
from hwtest import PG_PASSWORD, run_hwsearch, stored_trials
from hwtest.pgserver import PGServer

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study_with_trials(store, name: str, n: int) -> None:
    optuna.create_study(study_name=name, storage=store.optuna)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i in range(n):
        stored_trials.add_finished_trial(store, name, {"x": 0.5}, dist,
                               [{"epoch": 1, "train_loss": 1.0 + i}])


def test_server_restart_is_retried(pg_server: PGServer) -> None:
    """Calls made while the server is down wait for it and then succeed: a restart passes."""
    store = open_storage(pg_server.url("hw", PG_PASSWORD), retry_for=60)
    _study_with_trials(store, "s", 2)
    trial_id = store.ask(optuna.load_study(study_name="s", storage=store.optuna),
                         {}, lambda n: {"launcher": "me"})[0]
    pg_server.stop()  # every pooled connection is now dead
    threading.Timer(3.0, pg_server.start).start()
    start = time.monotonic()
    assert store.counts("s").finished == 2  # waited for the server
    assert time.monotonic() - start >= 2.0
    assert rec.mark_completed(store, trial_id, 0.5)  # writes go through too
    assert store.counts("s").complete == 3
    store.close()


def test_outage_past_the_budget_is_one_line_and_fails_fast_after(pg_server: PGServer) -> None:
    store = open_storage(pg_server.url("hw", PG_PASSWORD), retry_for=2)
    _study_with_trials(store, "s", 1)
    pg_server.stop()
    start = time.monotonic()
    with pytest.raises(StorageError) as e:
        store.counts("s")
    waited = time.monotonic() - start
    assert 2 <= waited < 10
    message = str(e.value)
    assert "\n" not in message and PG_PASSWORD not in message
    assert "failed for 2 s" in message and "rerun" in message
    start = time.monotonic()  # gave up: cleanup calls are tried once, not waited out again
    with pytest.raises(StorageError):
        store.write_attrs(1, {"a": 1})
    assert time.monotonic() - start < 1.5
    pg_server.start()
    assert store.counts("s").finished == 1  # and back when the server is
    assert not store.retry.gave_up
    store.close()


def test_advisory_claim_times_out(pg_server: PGServer) -> None:
    url = pg_server.url("hw")
    holder, waiter = open_storage(url), open_storage(url, claim_timeout=1.5)
    with holder.claim("s"):
        start = time.monotonic()
        with pytest.raises(StorageError, match="another launcher holds it"):
            with waiter.claim("s"):
                pass
        assert 1.4 <= time.monotonic() - start < 5
    with waiter.claim("s"):  # released: taken at once
        pass
    holder.close()
    waiter.close()


def test_an_advisory_claim_waits_its_turn_not_forever(pg_server: PGServer) -> None:
    """A launcher that releases the claim and asks again at once does not starve a waiter:
    PostgreSQL queues the waiters (polling pg_try_advisory_lock lost round after round; under
    16 launchers one waited out its 120 s timeout, benchmarks/load.py)."""
    url = pg_server.url("hw")
    hog, waiter = open_storage(url), open_storage(url)
    rounds: list[float] = []

    def hog_loop() -> None:
        for _ in range(8):
            with hog.claim("s"):
                rounds.append(time.monotonic())
                time.sleep(0.3)

    thread = threading.Thread(target=hog_loop)
    thread.start()
    while not rounds:
        time.sleep(0.01)
    with waiter.claim("s"):
        hog_rounds_first = len(rounds)
    thread.join(timeout=30)
    assert len(rounds) == 8
    assert hog_rounds_first <= 2  # granted at the first release (or the next), not the last
    hog.close()
    waiter.close()


def test_sqlite_busy_is_transient_and_waited_out(tmp_path: Path) -> None:
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
    threading.Timer(2.0, blocker.rollback).start()
    trial_id = store.ask(optuna.load_study(study_name="s", storage=store.optuna), {},
                         lambda n: {"launcher": "me"})[0]
    assert store.optuna.get_trial(trial_id).state == TrialState.RUNNING
    blocker.close()
    impatient.dispose()
    store.close()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own (root only)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    return filler


def test_sqlite_disk_full_is_one_line_and_loses_nothing(small_fs: Path, mnist_dir: Path) -> None:
    url = f"sqlite:///{small_fs / 'full.db'}"
    store = open_storage(url)
    _study_with_trials(store, "s", 3)
    trial_id = store.ask(optuna.load_study(study_name="s", storage=store.optuna), {},
                         lambda n: {"launcher": "me"})[0]
    filler = _fill(small_fs)
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
