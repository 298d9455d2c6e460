"""Watching a study while a launch runs, and its counts after: the trials as stored, a wait
for an event with a generous hang guard, and the exact-count check every fault test ends with."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trials(url: str, name: str) -> list[FrozenTrial]:
    """The study's trials as stored now; none while the launch has not made the study. Never
    makes Optuna's tables: a poll that made them while the launcher's first open makes them
    too would fail that open (a duplicate ``alembic_version`` row), as it did under load."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not os.path.exists(parsed.database or ""):
        return []  # and no empty file made before the launcher's
    if not _schema_stamped(url):
        return []  # no tables yet, or half made by the launcher
    try:
        storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
    except (optuna.exceptions.OptunaError, sa.exc.SQLAlchemyError, RuntimeError):
        return []
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials()
    except KeyError:
        return []
    finally:
        storage.engine.dispose()


def studies(url: str, prefix: str) -> dict[str, optuna.Study]:
    """Every study of ``url`` whose name starts with ``prefix``, by name."""
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=url)
        for s in optuna.get_all_study_summaries(url)
        if s.study_name.startswith(prefix)
    }


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             *procs: subprocess.Popen, every: float = 0.3) -> None:
    """Until ``predicate()``, asked ``every`` seconds; fails at once when one of ``procs``
    exits first, and after ``timeout`` seconds (a hang guard: give minutes, never a tight
    bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"process {p.pid} exited ({p.returncode}) before {what}")
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def _schema_stamped(url: str) -> bool:
    """Whether the launcher has finished making Optuna's schema: its last step stamps
    ``alembic_version``. Optuna's storage, even told to skip table creation, stamps the
    version itself when the stamp is missing, which would race the launcher's own stamp."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def mid_trial(url: str, name: str) -> Callable[[], bool]:
    """True once a RUNNING trial of the study has recorded an epoch."""
    return lambda: any(t.state == TrialState.RUNNING and t.intermediate_values
                       for t in trials(url, name))


def assert_exact(url: str, name: str, target: int) -> list[FrozenTrial]:
    """Exactly ``target`` finished trials, none RUNNING; every other one FAIL (lost, replaced)."""
    got = trials(url, name)
    finished = [t for t in got if t.state in FINISHED]
    assert len(finished) == target, [(t.number, t.state.name) for t in got]
    assert all(t.state == TrialState.FAIL for t in got if t.state not in FINISHED), [
        (t.number, t.state.name) for t in got]
    return got
