"""Chaos on PostgreSQL (issue 21, classes 10 and 11): a server restart under two launchers
sharing a study (their advisory claims die with the server), a server that runs out of disk,
and a launcher killed with SIGKILL, each on a server of the test's own (``hwtest.pgserver``),
ending with exact counts. Marked ``chaos`` (and ``slow``): real Ray, real MNIST, tiny nets.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hwtest import PG_PASSWORD, run_hwsearch
from hwtest.chaos import chaos_launch_args as _args
from hwtest.chaos import (
    end_what_the_test_started,  # noqa: F401 (autouse)
    log_tail,
    start_hwsearch,
)
from hwtest.disk import fill, tmpfs
from hwtest.launches import FINISHED, assert_exact, mid_trial, trials, wait_for
from hwtest.pgserver import PGServer

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
NAME = "mnist-highway-d10"
def _finished(url: str, name: str) -> int:
    return sum(t.state in FINISHED for t in trials(url, name))


def test_postgres_restarts_under_two_launchers_do_not_overshoot(
    pg_server: PGServer, mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """Two launchers share one study; the server restarts twice while they train and ask (each
    restart ends every session, so each launcher's advisory claim is gone while it may still be
    counting on it). The ask counts again under the study's row lock: exactly the target."""
    url, name = pg_server.url("hw", PG_PASSWORD), f"{prefix}{NAME}"
    args = _args(url, mnist_dir, prefix, **{"--trials": "5"})
    logs = [tmp_path / "log1", tmp_path / "log2"]
    procs = [start_hwsearch(*args, log=log, cwd=tmp_path) for log in logs]
    wait_for(mid_trial(url, name), 300, "a trial's first epoch", *procs)
    pg_server.restart()
    wait_for(lambda: _finished(url, name) >= 2, 400, "two finished trials", *procs)
    pg_server.restart()
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=600) == 0, log_tail(log)
    got = assert_exact(url, name, 5)
    assert len(got) == 5 + sum(t.state == TrialState.FAIL for t in got)  # none asked twice
    assert sorted(t.number for t in got) == list(range(len(got)))


@pytest.fixture
def small_tablespace(pg_server: PGServer) -> Iterator[tuple[str, Path]]:
    """A database of ``pg_server`` whose tables live in a tablespace on a 64 MiB tmpfs of the
    test's own (root only): the server's own files and its WAL stay on the real disk, so a
    full tablespace is an error to the writer ("could not extend file"), not a server crash.
    Yields the database's URL and the mount."""
    import psycopg

    mount = Path(tempfile.mkdtemp(prefix="hwts-", dir="/tmp"))
    try:
        with tmpfs(mount, "size=64m,mode=0755"):
            location = mount / "ts"
            location.mkdir()
            owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
            if owner:
                os.chown(location, owner.pw_uid, owner.pw_gid)
            admin = pg_server.url("postgres").replace("postgresql+psycopg", "postgresql")
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"CREATE TABLESPACE small LOCATION '{location}'")
                    conn.execute("CREATE DATABASE hwsmall TABLESPACE small")
                yield pg_server.url("hwsmall", PG_PASSWORD), mount
            finally:
                pg_server.stop("immediate")  # its files on the tmpfs go with the mount
    finally:
        shutil.rmtree(mount, ignore_errors=True)


def test_postgres_out_of_disk_stops_the_launch_and_a_rerun_finishes(
    small_tablespace: tuple[str, Path], mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """The tablespace fills up mid-search: the launch stops with one line that says so (exit
    2), every finished trial stays as it was, and once space returns the rerun finishes with
    exact counts."""
    url, mount = small_tablespace
    name = f"{prefix}{NAME}"
    # The chaos launch's trials take about two seconds, so most of the search is left when the
    # disk fills (trials of half a second let the launch finish first, its few rows fitting in
    # pages the tables already had).
    args = _args(url, mnist_dir, prefix, **{"--trials": "6"})
    log = tmp_path / "log"
    proc = start_hwsearch(*args, log=log, cwd=tmp_path)
    wait_for(lambda: _finished(url, name) >= 1, 400, "a finished trial", proc)
    wait_for(mid_trial(url, name), 300, "a trial's first epoch", proc)
    before = {t.number: t.value for t in trials(url, name) if t.state in FINISHED}
    filler = fill(mount)
    assert proc.wait(timeout=600) == 2, log_tail(log)
    text = log.read_text()
    last = text.strip().splitlines()[-1]
    assert last.startswith("hwsearch: error:") and "rerun" in last, last
    assert any(w in last.lower() for w in ("space", "could not extend", "disk")), last
    assert "Traceback" not in text and PG_PASSWORD not in text

    filler.unlink()
    again = run_hwsearch(*args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    got = assert_exact(url, name, 6)
    after = {t.number: t.value for t in got}
    assert all(after[n] == v for n, v in before.items())  # nothing finished lost or redone
    assert len(got) == 6 + sum(t.state == TrialState.FAIL for t in got)
