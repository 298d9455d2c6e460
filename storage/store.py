"""A study database, opened: the parts of this package put together behind one object.

A :class:`StudyStorage` holds Optuna studies in the standard schema (so the ``optuna`` CLI and
optuna-dashboard read it as is), the trained weights of finished trials, and a claim per study
that lets several launchers share it without asking for more trials than it needs. It is safe
to use from several processes at once; one instance serves one process, from the launcher's
threads. It composes the parts: the claim (``claims.py``, the one seam with two backends), the
read side (``queries.py``), the write side (``trials.py``), the weights (``artifacts.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from .artifacts import Artifacts, SQLArtifactStore
from .claims import CLAIM_TIMEOUT_S, SCHEMA_LOCK, AdvisoryClaim, Claim, FileClaim
from .database import Database, engine_kwargs
from .errors import StorageError
from .existing import check_existing, check_ours
from .queries import Beat, Numbers, Queries
from .rdb import RetryingRDBStorage
from .records import DEFAULT_HEARTBEAT_S, Counts
from .retry import Retry, reason
from .trials import Trials
from .url import ENV_VAR, FILE_ENV_VAR, mask_url, parse_url, sqlite_file


class StudyStorage:
    def __init__(
        self,
        url: str,
        claim_timeout: float = CLAIM_TIMEOUT_S,
        retry_for: float | None = None,
        *,
        create: bool = True,
        allow_other_tables: bool = False,
    ) -> None:
        """``create=False``: the database must exist (see ``existing.py``); nothing is written
        on opening it, and no lock file is made. ``create=True`` makes Optuna's tables in an
        empty database; one holding other tables and no studies is refused unless
        ``allow_other_tables``."""
        parsed = parse_url(url)
        self.display_url = mask_url(parsed)  # the URL with its password masked: safe to show
        # Transient faults are retried once the storage is open; opening is not (a wrong host
        # should be a one-line error at once, not after the retry budget).
        self._retry = Retry(self.display_url, retry_for)
        self._retry.enabled = False
        sqlite = parsed.get_backend_name() == "sqlite"
        file = sqlite_file(parsed) if sqlite else None
        sqlite_path = str(file) if file is not None else None
        if file is not None and not file.resolve().parent.is_dir():
            raise StorageError(f"directory {file.resolve().parent} for {self.display_url} "
                               "does not exist")

        def claim_on(engine: sa.Engine) -> Claim:
            if sqlite:
                return FileClaim(self.display_url, sqlite_path, claim_timeout)
            return AdvisoryClaim(self.display_url, engine, self._retry, claim_timeout)

        try:
            if not create:
                check_existing(url, parsed, self.display_url)
            else:
                check_ours(url, parsed, self.display_url, allow_other_tables)
            if sqlite_path and create:
                _use_wal(url)
            # Two launchers opening a new database at once would both create the tables, and
            # PostgreSQL rejects the loser's CREATE TABLE; so the schema is made under a lock,
            # taken on a bare connection before Optuna's engine exists.
            bare = sa.create_engine(url, poolclass=sa.pool.NullPool)
            try:
                with claim_on(bare).hold(SCHEMA_LOCK) if create else nullcontext():
                    self._optuna = RetryingRDBStorage(
                        url, self._retry, engine_kwargs=engine_kwargs(url, read_only=not create),
                        skip_table_creation=not create,
                    )
                    db = Database(self._optuna.engine, self._retry)
                    self._artifacts = Artifacts(SQLArtifactStore(db, create=create), db)
            finally:
                bare.dispose()
            self._retry.enabled = True
        except StorageError:
            raise
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(f"cannot open storage {self.display_url}: {reason(e)}") from None
        except (RuntimeError, ValueError) as e:  # optuna's schema/version errors
            raise StorageError(f"cannot use storage {self.display_url}: {reason(e)}") from None
        self._db = db
        self._claim = claim_on(db.engine)
        self._queries = Queries(db, self._optuna)
        self._trials = Trials(db, self._optuna, self._queries)

    # It holds claims, locks and a launcher's state, which mean nothing in another process.
    def __getstate__(self) -> None:
        raise TypeError(
            "a StudyStorage holds this process's claims and connections and must not be "
            "pickled; pass its .optuna storage (pickled without the password, which the "
            f"other side reads from {ENV_VAR}, {FILE_ENV_VAR} or libpq's PGPASSWORD or "
            "~/.pgpass) or the URL without a password"
        )

    @property
    def retry(self) -> Retry:
        """How transient faults are retried (and whether it gave up)."""
        return self._retry

    @property
    def optuna(self) -> optuna.storages.RDBStorage:
        """The Optuna storage, for Optuna's own API (studies, asks, attributes)."""
        return self._optuna

    @property
    def artifacts(self) -> Artifacts:
        """Trial weights, wherever they are: the database, or a study's artifact directory."""
        return self._artifacts

    @property
    def database(self) -> Database:
        """The engine and its retry, for this package's own queries (``keep.py``)."""
        return self._db

    def claim(self, study_name: str) -> AbstractContextManager[None]:
        """Exclusive across processes and machines for ``study_name`` while held."""
        return self._claim.hold(study_name)

    def studies(self) -> Iterator[optuna.Study]:
        for name in self.study_names():
            yield optuna.load_study(study_name=name, storage=self._optuna)

    def close(self) -> None:
        self._optuna.remove_session()
        self._optuna.engine.dispose()

    # -- the read side (queries.py) -----------------------------------------------------------

    def study_names(self) -> list[str]:
        return self._queries.study_names()

    def study_id(self, study_name: str) -> int:
        return self._queries.study_id(study_name)

    def trial_id(self, study_name: str, number: int) -> int:
        return self._queries.trial_id(study_name, number)

    def counts(self, study_name: str) -> Counts:
        return self._queries.counts(study_name)

    def beats(self, study_name: str,
              default_interval: float = DEFAULT_HEARTBEAT_S) -> list[Beat]:
        return self._queries.beats(study_name, default_interval)

    def best_number(self, study_name: str) -> int | None:
        return self._queries.best_number(study_name)

    def last_epochs(self, study_name: str, numbers: Numbers = None) -> dict[int, tuple[int, Any]]:
        return self._queries.last_epochs(study_name, numbers)

    def light_trials(self, study_name: str, numbers: Numbers = None) -> list[FrozenTrial]:
        return self._queries.light_trials(study_name, numbers)

    # -- the write side (trials.py) -----------------------------------------------------------

    def ask(self, study: optuna.Study, distributions: Mapping[str, BaseDistribution],
            attrs: Callable[[int], Mapping[str, Any]],
            target: int | None = None) -> tuple[int, int, dict[str, Any]] | None:
        return self._trials.ask(study, distributions, attrs, target)

    def write_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> bool:
        return self._trials.write_attrs(trial_id, attrs)

    def finish_trial(self, trial_id: int, state: TrialState, value: float | None,
                     attrs: Mapping[str, Any],
                     then: Callable[[sa.Connection], None] | None = None) -> bool:
        return self._trials.finish_trial(trial_id, state, value, attrs, then)

    def fail_stale(self, study_name: str, default_interval: float) -> int:
        return self._trials.fail_stale(study_name, default_interval)

    def release_trials(self, study_name: str, launcher: str, reason: str) -> int:
        return self._trials.release_trials(study_name, launcher, reason)

    def record_heartbeat(self, trial_id: int) -> None:
        self._trials.record_heartbeat(trial_id)


def _use_wal(url: str) -> None:
    """Write-ahead logging on a SQLite file: readers never wait for the launcher's writes."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    engine.dispose()


def open_storage(url: str, **options: Any) -> StudyStorage:
    """The storage for ``url`` (already resolved); one-line :class:`StorageError` on failure."""
    return StudyStorage(url, **options)
