"""SQLite and PostgreSQL behind :class:`StudyStorage`, via SQLAlchemy and Optuna's RDBStorage."""

from __future__ import annotations

import fcntl
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy as sa
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from .artifacts import SQLArtifactStore
from .base import StudyStorage
from .errors import StorageError
from .url import mask_url, parse_url

SQLITE_BUSY_TIMEOUT_S = 60
SCHEMA_LOCK = "__schema__"  # a claim name no study can have (study names are not empty)
STALE_REASON = "launcher lost (no heartbeat within the grace period); replaced"


def engine_kwargs(url: str) -> dict[str, object]:
    """Per-backend options: a busy timeout for SQLite (WAL is set on the file), pre-ping for
    servers so a connection dropped by the server is replaced instead of failing a write."""
    if parse_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def _short_reason(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _lock_key(study_name: str) -> int:
    return zlib.crc32(f"hwsearch:{study_name}".encode())


class SQLStudyStorage(StudyStorage):
    def __init__(self, url: str, heartbeat_interval: int = 10, grace_period: int | None = None):
        parsed = parse_url(url)
        self.display_url = mask_url(parsed)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._sqlite_path = parsed.database if self._sqlite and parsed.database else None
        if self._sqlite_path:
            parent = Path(self._sqlite_path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StorageError(f"directory {parent} for {self.display_url} does not exist")
        self._local = threading.Lock()
        try:
            self._engine = sa.create_engine(url, **engine_kwargs(url))  # type: ignore[arg-type]
            with self._engine.connect() as conn:
                if self._sqlite_path:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            # Two launchers opening a new database at once would both create the tables, and
            # PostgreSQL rejects the loser's CREATE TABLE; so the schema is made under a lock.
            with self.claim(SCHEMA_LOCK):
                self._optuna = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs(url),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period or 3 * heartbeat_interval,
                    failed_trial_callback=None,
                )
                self._artifacts = SQLArtifactStore(self._engine)
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(
                f"cannot open storage {self.display_url}: {_short_reason(e)}"
            ) from None
        except (RuntimeError, ValueError) as e:  # optuna's schema/version errors
            raise StorageError(
                f"cannot use storage {self.display_url}: {_short_reason(e)}"
            ) from None

    # A pickled RDBStorage carries its URL, password included: refuse to be shipped anywhere.
    def __getstate__(self) -> None:
        raise TypeError("a StudyStorage holds a database URL and must not be pickled")

    @property
    def optuna(self) -> optuna.storages.RDBStorage:
        return self._optuna

    @property
    def artifacts(self) -> SQLArtifactStore:
        return self._artifacts

    def study_names(self) -> list[str]:
        return sorted(s.study_name for s in self._optuna.get_all_studies())

    @contextmanager
    def claim(self, study_name: str) -> Iterator[None]:
        with self._local:
            if self._sqlite:
                with self._file_lock(study_name):
                    yield
            else:
                with self._advisory_lock(study_name):
                    yield

    @contextmanager
    def _file_lock(self, study_name: str) -> Iterator[None]:
        if not self._sqlite_path:  # in-memory: one process only
            yield
            return
        # One byte per study in one lock file (POSIX record locks), so claims on different
        # studies, and the schema's, do not wait for each other. Record locks belong to the
        # process; ``self._local`` keeps this instance's claims one at a time.
        key = _lock_key(study_name)
        with open(f"{self._sqlite_path}.lock", "a+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX, 1, key)
            try:
                yield
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN, 1, key)

    @contextmanager
    def _advisory_lock(self, study_name: str) -> Iterator[None]:
        key = _lock_key(study_name)
        with self._engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()

    def fail_stale(self, study: optuna.Study) -> int:
        """Fail RUNNING trials whose launcher stopped beating, saying why; returns how many.

        Optuna's ``fail_stale_trials`` cannot record a reason (a finished trial is read-only),
        so the reason is written first, then the state.
        """
        failed = 0
        for trial_id in self._optuna._get_stale_trial_ids(study._study_id):
            try:
                self._optuna.set_trial_user_attr(trial_id, "outcome", STALE_REASON)
                failed += self._optuna.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass  # another launcher got there first
        return failed

    def close(self) -> None:
        self._optuna.remove_session()
        self._optuna.engine.dispose()
        self._engine.dispose()


def open_storage(url: str, heartbeat_interval: int = 10) -> SQLStudyStorage:
    """The storage for ``url`` (already resolved); one-line :class:`StorageError` on failure."""
    return SQLStudyStorage(url, heartbeat_interval=heartbeat_interval)
