"""The claim on a study: who may ask it for its next trials.

Several launchers may share a study; each counts what the study still needs and asks for it
while it holds the study's claim, so together they never ask for more than the target. The
claim is exclusive across processes and machines, held for milliseconds, and the one part of
the storage that differs by backend: a record lock in a file beside a SQLite database
(:class:`FileClaim`), a queued advisory lock on a PostgreSQL server (:class:`AdvisoryClaim`).
"""

from __future__ import annotations

import abc
import fcntl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .errors import StorageError
from .retry import Retry

CLAIM_TIMEOUT_S = 120.0  # a claim is held for milliseconds; two minutes means something hangs
SCHEMA_LOCK = "__schema__"  # a claim name no study can have (study names are not empty)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout ran out


def lock_key(study_name: str) -> int:
    """The study's lock number: a byte offset of the lock file, or an advisory lock's key."""
    return zlib.crc32(f"hwsearch:{study_name}".encode())


class Claim(abc.ABC):
    """Exclusive across processes and machines for one study name while held; a wait longer
    than ``timeout`` seconds is a :class:`StorageError`. One instance serves one process,
    from any of its threads: they take their claims one at a time."""

    def __init__(self, display_url: str, timeout: float = CLAIM_TIMEOUT_S) -> None:
        self.display_url, self.timeout = display_url, timeout
        self._local = threading.Lock()

    @contextmanager
    def hold(self, study_name: str) -> Iterator[None]:
        if not self._local.acquire(timeout=self.timeout):
            raise self.timed_out(study_name)
        try:
            with self._lock(study_name):
                yield
        finally:
            self._local.release()

    @abc.abstractmethod
    def _lock(self, study_name: str) -> AbstractContextManager[None]:
        """The backend's lock on ``study_name``, for this process."""

    def timed_out(self, study_name: str) -> StorageError:
        return StorageError(
            f"waited {self.timeout:g} s for the claim on study {study_name!r} in "
            f"{self.display_url}; another launcher holds it and does not let go"
        )


class FileClaim(Claim):
    """SQLite: one byte per study in one lock file beside the database (POSIX record locks),
    so claims on different studies, and the schema's, do not wait for each other. Record
    locks belong to the process; :meth:`Claim.hold` keeps this process's claims one at a time.
    An in-memory database (``path`` None) lives in one process, so its claim is that lock."""

    def __init__(self, display_url: str, path: str | None,
                 timeout: float = CLAIM_TIMEOUT_S) -> None:
        super().__init__(display_url, timeout)
        self.path = path

    @contextmanager
    def _lock(self, study_name: str) -> Iterator[None]:
        if not self.path:
            yield
            return
        key = lock_key(study_name)
        with open(f"{self.path}.lock", "a+b") as f:

            def try_once() -> bool:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, key)
                    return True
                except OSError:
                    return False

            self._poll(study_name, try_once)
            try:
                yield
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN, 1, key)

    def _poll(self, study_name: str, try_once: Callable[[], bool]) -> None:
        """Call ``try_once`` until it succeeds, backing off, until the timeout."""
        deadline, pause = time.monotonic() + self.timeout, 0.005
        while not try_once():
            if time.monotonic() > deadline:
                raise self.timed_out(study_name)
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


class AdvisoryClaim(Claim):
    """PostgreSQL: a session advisory lock per study, on a connection held for the claim. It
    waits in ``pg_advisory_lock``, where the server queues the waiters in order, for at most
    the timeout (``lock_timeout``, for that transaction only); polling ``pg_try_advisory_lock``
    instead queues no one, and a launcher can lose every round (docs/reliability.md)."""

    def __init__(self, display_url: str, engine: sa.Engine, retry: Retry,
                 timeout: float = CLAIM_TIMEOUT_S) -> None:
        super().__init__(display_url, timeout)
        self.engine, self.retry = engine, retry

    @contextmanager
    def _lock(self, study_name: str) -> Iterator[None]:
        key = lock_key(study_name)
        conn = self.retry(f"claiming study {study_name!r}", lambda: self._take(key, study_name))
        try:
            yield
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except SQLAlchemyError:
                pass  # the connection is gone, and the server released its locks with it
            finally:
                conn.close()

    def _take(self, key: int, study_name: str) -> sa.Connection:
        conn = self.engine.connect()
        try:
            timeout_ms = max(1, int(self.timeout * 1000))
            conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"),
                         {"t": f"{timeout_ms}ms"})
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()  # the lock is the session's: it outlives the transaction
        except OperationalError as e:
            conn.close()
            if getattr(e.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise self.timed_out(study_name) from None
            raise
        except BaseException:
            conn.close()
            raise
        return conn
