"""Retrying database calls through transient faults, for a bounded time.

A search runs for hours against a database that may drop a connection, restart, or (SQLite)
stay locked by another writer for a while. Those faults pass: each storage call the search
makes is retried with backoff until :attr:`Retry.budget` seconds have gone by. Then it gives up
with a one-line :class:`StorageError` (the launch exits 2, and a rerun resumes the study), and
later calls are tried once only, so the launcher's cleanup does not wait out the budget again.

Errors that do not pass with time (a full disk, a missing table, a constraint) are not retried:
a full disk becomes a one-line :class:`StorageError` at once; the others propagate unchanged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from .errors import StorageError

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_ENV = "HWSEARCH_DB_RETRY_S"
DEFAULT_BUDGET_S = 60.0  # a PostgreSQL restart takes seconds; a minute covers a failover
MAX_PAUSE_S = 2.0
# PostgreSQL SQLSTATEs that pass: connection exceptions (class 08), the server shutting down or
# starting (57P01-57P03), too many connections, serialization failures and deadlocks.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P0", "53300", "40001", "40P01")
SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")
DISK_FULL = ("database or disk is full", "disk full", "no space left on device",
             "could not extend file", "could not write")


def budget_from_env() -> float:
    """``$HWSEARCH_DB_RETRY_S`` (seconds, >= 0), else :data:`DEFAULT_BUDGET_S`."""
    raw = os.environ.get(RETRY_ENV)
    if raw is None:
        return DEFAULT_BUDGET_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1e6:
        raise StorageError(f"{RETRY_ENV} must be a number of seconds >= 0, not {raw!r}")
    return value


def find_cause(
    error: BaseException, kinds: type | tuple[type, ...], depth: int = 5
) -> BaseException | None:
    """The first of ``error`` and its causes (at most ``depth`` deep) that is one of ``kinds``:
    libraries wrap what they raise (Optuna's StorageInternalError, Tune's TuneError)."""
    seen: BaseException | None = error
    for _ in range(depth):
        if seen is None:
            return None
        if isinstance(seen, kinds):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _database_error(error: BaseException) -> SQLAlchemyError | None:
    """The SQLAlchemy error behind ``error`` (Optuna wraps it in StorageInternalError)."""
    return find_cause(error, SQLAlchemyError)  # type: ignore[return-value]


def reason(error: BaseException) -> str:
    """The driver's message, first line only (never the SQL or its parameters)."""
    db = _database_error(error)
    orig = getattr(db, "orig", None) or db or error
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def is_disk_full(error: BaseException) -> bool:
    db = _database_error(error)
    return db is not None and any(s in reason(db).lower() for s in DISK_FULL)


def is_transient(error: BaseException) -> bool:
    """A fault that may pass by itself: a dropped or refused connection, a restarting server,
    a lock held by another writer."""
    db = _database_error(error)
    if db is None or is_disk_full(db):
        return False
    if isinstance(db, DBAPIError) and db.connection_invalidated:
        return True
    if not isinstance(db, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(getattr(db, "orig", None), "sqlstate", None)
    if sqlstate:  # PostgreSQL says what kind of error it is
        return str(sqlstate).startswith(TRANSIENT_SQLSTATE_PREFIXES)
    text = reason(db).lower()
    if "sqlite" in type(getattr(db, "orig", None)).__module__:
        return any(s in text for s in SQLITE_TRANSIENT)
    return True  # no SQLSTATE from a server driver: the connection itself failed


class Retry:
    """Calls a function, retrying transient database faults with backoff for ``budget``
    seconds. Nested calls (a retried method that calls another) retry only at the outermost
    level, so one fault is waited out once. ``clock`` and ``sleep`` are the time it goes by;
    tests give it a logical clock, so the backoff is checked step by step without waiting."""

    def __init__(self, display_url: str, budget: float | None = None) -> None:
        self.display_url = display_url
        self.budget = budget_from_env() if budget is None else budget
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep
        self.gave_up = False
        self.enabled = True  # off while a storage opens: a wrong host fails at once
        self._depth = threading.local()

    def __call__(self, what: str, fn: Callable[[], T]) -> T:
        if getattr(self._depth, "n", 0) or not self.enabled:
            return fn()
        self._depth.n = 1
        try:
            return self._retrying(what, fn)
        finally:
            self._depth.n = 0

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        deadline: float | None = None
        pause, attempts = 0.1, 0
        while True:
            try:
                result = fn()
            except Exception as e:
                if is_disk_full(e):
                    raise StorageError(
                        f"{self.display_url}: {reason(e)} while {what}; nothing stored was "
                        "lost: free some space and rerun the same command to resume"
                    ) from None
                if not is_transient(e):
                    raise
                now = self.clock()
                deadline = deadline if deadline is not None else now + self.budget
                if self.gave_up or now >= deadline:
                    self.gave_up = True
                    raise StorageError(
                        f"the database {self.display_url} failed for {self.budget:g} s ({what}: "
                        f"{reason(e)}); rerun the same command to resume"
                    ) from None
                attempts += 1
                if attempts == 1:
                    log.warning("database %s: %s; retrying for up to %g s", self.display_url,
                                reason(e), self.budget)
                self.sleep(min(pause, max(0.0, deadline - now)))
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            if attempts:
                log.warning("database %s answers again (%s)", self.display_url, what)
            self.gave_up = False
            return result
