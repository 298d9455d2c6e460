"""Helpers of the chaos suite: launchers each in a session of its own, ended after the test
(autouse fixture :func:`end_what_the_test_started`), their processes, their log. Waiting on a
study and exact counts are ``hwtest.launches``'."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import hwtest


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a launcher started with ``start_new_session``, and
    whatever it started that stayed in its session: Ray's processes do)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def log_tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def end_sessions(sids: list[int]) -> None:
    """SIGKILL whatever is left of these sessions (a failed test's launchers and their Ray,
    reparented or not; a session id stays with its processes)."""
    import os
    import signal

    for sid in sids:
        for pid in session_processes(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


_started: list[int] = []


def start_hwsearch(*args: str, **kwargs) -> subprocess.Popen:
    """``hwtest.start_hwsearch`` (its own session), remembered so that the fixture below can
    end what a failed test left."""
    proc = hwtest.start_hwsearch(*args, **kwargs)
    _started.append(proc.pid)
    return proc


@pytest.fixture(autouse=True)
def end_what_the_test_started() -> Iterator[None]:
    """Import it into a test module to end, after each test, the sessions it started."""
    yield
    end_sessions(_started)
    _started.clear()


def chaos_launch_args(url: str, data: Path, prefix: str, **extra: str) -> list[str]:
    """Trials of about two seconds each (12 epochs; 2026-12-06, 2-core CPU), one at a time,
    beating every second. A test breaks something after a trial's first epoch and expects
    that trial, and most of the search, still to be running: trials of half a second (the
    slow launch's 3 epochs) ended before the break, now that the engine is faster."""
    flags = {"--heartbeat": "1", "--epochs": "12", **extra}
    return hwtest.slow_launch_args(url, str(data), prefix, **flags)
