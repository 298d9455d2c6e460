"""Helpers of the chaos suite: waiting on a study, exact counts, the processes of a session."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trials(url: str, name: str) -> list[FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials()
    except KeyError:
        return []


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             *procs: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"process {p.pid} exited ({p.returncode}) before {what}")
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def mid_trial(url: str, name: str) -> Callable[[], bool]:
    """True once a RUNNING trial of the study has recorded an epoch."""
    return lambda: any(t.state == TrialState.RUNNING and t.intermediate_values
                       for t in trials(url, name))


def assert_exact(url: str, name: str, target: int) -> list[FrozenTrial]:
    """Exactly ``target`` finished trials, none RUNNING; every other one FAIL (lost, replaced)."""
    got = trials(url, name)
    finished = [t for t in got if t.state in FINISHED]
    assert len(finished) == target, [(t.number, t.state.name) for t in got]
    assert all(t.state == TrialState.FAIL for t in got if t.state not in FINISHED)
    return got


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
