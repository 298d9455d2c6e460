"""One database, reached one way: its engine, its retry, and the two ways every query of this
package runs (:meth:`Database.read` and :meth:`Database.write`).

One engine serves both Optuna's RDBStorage and this package's own queries (``schema.py``), so
an in-memory SQLite database (``sqlite:///:memory:``, what the planner's unit tests use) is one
database, not two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa

from .retry import Retry
from .url import parse_url

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 60


def engine_kwargs(url: str, *, read_only: bool = False) -> dict[str, object]:
    """Per-backend options: a busy timeout for SQLite (WAL is set on the file), pre-ping for
    servers so a connection dropped by the server is replaced instead of failing a write.
    ``read_only`` (the read commands): PostgreSQL refuses any write in their sessions."""
    if parse_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if read_only:
        return {"pool_pre_ping": True,
                "connect_args": {"options": "-c default_transaction_read_only=on"}}
    return {"pool_pre_ping": True}


def utcnow() -> dt.datetime:
    """Naive UTC, as Optuna stores a trial's datetimes."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Database:
    """The engine and its :class:`Retry`. A query is a function of a connection; ``read``
    runs it on a connection of its own, ``write`` in a transaction of its own (committed on
    return, rolled back on an error), each retried through transient faults as ``what``."""

    engine: sa.Engine
    retry: Retry

    def read(self, what: str, query: Callable[[sa.Connection], T]) -> T:
        def run() -> T:
            with self.engine.connect() as conn:
                return query(conn)

        return self.retry(what, run)

    def write(self, what: str, change: Callable[[sa.Connection], T]) -> T:
        def run() -> T:
            with self.engine.begin() as conn:
                return change(conn)

        return self.retry(what, run)

    @staticmethod
    def now(conn: sa.Connection) -> dt.datetime:
        """The database's clock, naive UTC: heartbeats are compared on it, never the host's."""
        now = conn.execute(sa.text("SELECT CURRENT_TIMESTAMP")).scalar()
        if isinstance(now, str):  # SQLite returns the text of CURRENT_TIMESTAMP (UTC)
            now = dt.datetime.fromisoformat(now)
        return now.replace(tzinfo=None)
