"""One database, reached one way: its engine, its retry, and the two ways every query of this
package runs (:meth:`Database.read` and :meth:`Database.write`).

One engine serves both Optuna's RDBStorage and this package's own queries (``schema.py``), so
an in-memory SQLite database (``sqlite:///:memory:``, what the planner's unit tests use) is one
database, not two.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import sqlalchemy as sa

from .retry import Retry
from .url import parse_url, sqlite_file

T = TypeVar("T")
SQLITE_BUSY_TIMEOUT_S = 60


def engine_kwargs(url: str, *, read_only: bool = False) -> dict[str, object]:
    """Per-backend options: a busy timeout for SQLite (WAL is set on the file), pre-ping for
    servers so a connection dropped by the server is replaced instead of failing a write.
    ``read_only`` (the read commands): PostgreSQL refuses any write in their sessions, and a
    SQLite file is opened read-only (:func:`sqlite_reader`)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if read_only and path is not None:
            return {"creator": sqlite_reader(path)}
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if read_only:
        return {"pool_pre_ping": True,
                "connect_args": {"options": "-c default_transaction_read_only=on"}}
    return {"pool_pre_ping": True}


def sqlite_reader(path: Path) -> Callable[[], sqlite3.Connection]:
    """Connections that only read ``path`` and never create it. Where this user may write the
    file and its folder, ``mode=rw`` with ``PRAGMA query_only``: every write is refused, and
    the last connection to close removes the write-ahead log's ``-wal`` and ``-shm`` files as
    a writer's does (a ``mode=ro`` connection would leave them beside the file). Elsewhere
    ``mode=ro``; and where SQLite cannot share the file's write-ahead log (a read-only mount, a
    file or folder this user may not write: the ``-shm`` index cannot be made or mapped), the
    file is opened ``immutable=1``: read as it is, without the log's locks. Nothing can write
    it meanwhile from here, and a writer elsewhere needs the same folder, so the reader sees
    what a finished launch left (docs/reliability.md)."""
    file = path.expanduser().absolute()
    base = f"file:{quote(str(file))}"

    def open_as(query: str) -> sqlite3.Connection:
        return sqlite3.connect(f"{base}?{query}", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S,
                               check_same_thread=False)

    def connect() -> sqlite3.Connection:
        if os.access(file, os.W_OK) and os.access(file.parent, os.W_OK):
            conn = open_as("mode=rw")
            conn.execute("PRAGMA query_only = 1")
            return conn
        conn = open_as("mode=ro")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return open_as("mode=ro&immutable=1")  # no locks: the busy timeout never applies

    return connect


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
