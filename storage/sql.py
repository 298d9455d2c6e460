"""SQLite and PostgreSQL behind :class:`StudyStorage`, via SQLAlchemy and Optuna's RDBStorage.

One engine serves both Optuna's RDBStorage and this module's own queries (``schema.py``), so an
in-memory SQLite database (``sqlite:///:memory:``, what the planner's unit tests use) is one
database, not two.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from . import schema as s
from .artifacts import SQLArtifactStore
from .base import Counts, StudyStorage
from .errors import StorageError
from .existing import check_existing
from .rdb import RetryingRDBStorage
from .records import (
    DIVERGED,
    DIVERGED_EPOCH,
    EPOCH_PREFIX,
    GRACE_FACTOR,
    HEARTBEAT_INTERVAL,
    LAUNCHER,
    OUTCOME,
    RAY_NODE_IP,
)
from .retry import Retry, reason
from .url import mask_url, parse_url

SQLITE_BUSY_TIMEOUT_S = 60
CLAIM_TIMEOUT_S = 120.0  # a claim is held for milliseconds; two minutes means something hangs
SCHEMA_LOCK = "__schema__"  # a claim name no study can have (study names are not empty)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout ran out
STALE_REASON = "launcher lost (no heartbeat within the grace period); replaced"


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


def _retried(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run the method through the storage's :class:`Retry` (transient faults, bounded)."""

    @functools.wraps(method)
    def wrapper(self: SQLStudyStorage, *args: Any, **kwargs: Any) -> Any:
        return self._retry(f"in {method.__name__}", lambda: method(self, *args, **kwargs))

    return wrapper


def _lock_key(study_name: str) -> int:
    return zlib.crc32(f"hwsearch:{study_name}".encode())


def _utcnow() -> dt.datetime:
    """Naive UTC, as Optuna stores a trial's datetimes."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class SQLStudyStorage(StudyStorage):
    def __init__(
        self,
        url: str,
        claim_timeout: float = CLAIM_TIMEOUT_S,
        retry_for: float | None = None,
        *,
        create: bool = True,
    ) -> None:
        """``create=False``: the database must exist (see ``existing.py``); nothing is written
        on opening it, and no lock file is made."""
        parsed = parse_url(url)
        self.display_url = mask_url(parsed)
        self._claim_timeout = claim_timeout
        # Transient faults are retried once the storage is open; opening is not (a wrong host
        # should be a one-line error at once, not after the retry budget).
        self._retry = Retry(self.display_url, retry_for)
        self._retry.enabled = False
        self._sqlite = parsed.get_backend_name() == "sqlite"
        database = parsed.database if self._sqlite else None
        self._sqlite_path = database if database and database != ":memory:" else None
        if self._sqlite_path:
            parent = Path(self._sqlite_path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StorageError(f"directory {parent} for {self.display_url} does not exist")
        self._local = threading.Lock()
        self._study_ids: dict[str, int] = {}
        try:
            if not create:
                check_existing(url, parsed, self.display_url)
            if self._sqlite_path and create:
                wal = sa.create_engine(url, poolclass=sa.pool.NullPool)
                with wal.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                wal.dispose()
            # Two launchers opening a new database at once would both create the tables, and
            # PostgreSQL rejects the loser's CREATE TABLE; so the schema is made under a lock,
            # taken on a bare connection before Optuna's engine exists.
            with self._schema_lock(url) if create else nullcontext():
                self._optuna = RetryingRDBStorage(
                    url,
                    self._retry,
                    engine_kwargs=engine_kwargs(url, read_only=not create),
                    skip_table_creation=not create,
                )
                self._engine = self._optuna.engine
                self._artifacts = SQLArtifactStore(self._engine, self._retry, create=create)
            self._retry.enabled = True
        except StorageError:
            raise
        except (SQLAlchemyError, OSError) as e:
            raise StorageError(
                f"cannot open storage {self.display_url}: {reason(e)}"
            ) from None
        except (RuntimeError, ValueError) as e:  # optuna's schema/version errors
            raise StorageError(
                f"cannot use storage {self.display_url}: {reason(e)}"
            ) from None

    # A pickled RDBStorage carries its URL, password included: refuse to be shipped anywhere.
    def __getstate__(self) -> None:
        raise TypeError("a StudyStorage holds a database URL and must not be pickled")

    @property
    def retry(self) -> Retry:
        """How transient faults are retried (and whether it gave up)."""
        return self._retry

    @property
    def optuna(self) -> optuna.storages.RDBStorage:
        return self._optuna

    @property
    def artifacts(self) -> SQLArtifactStore:
        return self._artifacts

    # -- claims -----------------------------------------------------------------------------

    @contextmanager
    def _schema_lock(self, url: str) -> Iterator[None]:
        if self._sqlite:
            with self._file_lock(SCHEMA_LOCK):
                yield
            return
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with self._advisory_lock(engine, SCHEMA_LOCK):
                yield
        finally:
            engine.dispose()

    @contextmanager
    def claim(self, study_name: str) -> Iterator[None]:
        if not self._local.acquire(timeout=self._claim_timeout):
            raise self._claim_timed_out(study_name)
        try:
            if self._sqlite:
                with self._file_lock(study_name):
                    yield
            else:
                with self._advisory_lock(self._engine, study_name):
                    yield
        finally:
            self._local.release()

    def _claim_timed_out(self, study_name: str) -> StorageError:
        return StorageError(
            f"waited {self._claim_timeout:g} s for the claim on study {study_name!r} in "
            f"{self.display_url}; another launcher holds it and does not let go"
        )

    def _deadline_poll(self, study_name: str, try_once: Any) -> None:
        """Call ``try_once`` until it succeeds, backing off, until the claim timeout."""
        deadline, pause = time.monotonic() + self._claim_timeout, 0.005
        while not try_once():
            if time.monotonic() > deadline:
                raise self._claim_timed_out(study_name)
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    @contextmanager
    def _file_lock(self, study_name: str) -> Iterator[None]:
        if not self._sqlite_path:  # in-memory: one process only, and self._local is held
            yield
            return
        # One byte per study in one lock file (POSIX record locks), so claims on different
        # studies, and the schema's, do not wait for each other. Record locks belong to the
        # process; ``self._local`` keeps this instance's claims one at a time.
        key = _lock_key(study_name)
        with open(f"{self._sqlite_path}.lock", "a+b") as f:

            def try_once() -> bool:
                try:
                    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, key)
                    return True
                except OSError:
                    return False

            self._deadline_poll(study_name, try_once)
            try:
                yield
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN, 1, key)

    @contextmanager
    def _advisory_lock(self, engine: sa.Engine, study_name: str) -> Iterator[None]:
        key = _lock_key(study_name)
        conn = self._retry(
            f"claiming study {study_name!r}", lambda: self._take_advisory(engine, key, study_name)
        )
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

    def _take_advisory(self, engine: sa.Engine, key: int, study_name: str) -> sa.Connection:
        """A connection holding the advisory lock ``key``. It waits in ``pg_advisory_lock``,
        where PostgreSQL queues the waiters in order, for at most the claim timeout
        (``lock_timeout``, for this transaction only). Polling ``pg_try_advisory_lock`` queued
        no one: under 16 launchers one lost every round for 120 s (benchmarks/load.py)."""
        conn = engine.connect()
        try:
            timeout_ms = max(1, int(self._claim_timeout * 1000))
            conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"),
                         {"t": f"{timeout_ms}ms"})
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()  # the lock is the session's: it outlives the transaction
        except OperationalError as e:
            conn.close()
            if getattr(e.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise self._claim_timed_out(study_name) from None
            raise
        except BaseException:
            conn.close()
            raise
        return conn

    # -- queries ----------------------------------------------------------------------------

    @_retried
    def study_names(self) -> list[str]:
        with self._engine.connect() as conn:
            names = conn.execute(sa.select(s.STUDIES.c.study_name)).scalars().all()
        return sorted(names)

    @_retried
    def study_id(self, study_name: str) -> int:
        if study_name not in self._study_ids:
            with self._engine.connect() as conn:
                found = conn.execute(
                    sa.select(s.STUDIES.c.study_id).where(s.STUDIES.c.study_name == study_name)
                ).scalar_one_or_none()
            if found is None:
                raise KeyError(study_name)
            self._study_ids[study_name] = int(found)
        return self._study_ids[study_name]

    def trial_id(self, study_name: str, number: int) -> int:
        return self._optuna.get_trial_id_from_study_id_trial_number(
            self.study_id(study_name), number
        )

    @_retried
    def counts(self, study_name: str) -> Counts:
        study_id = self.study_id(study_name)
        t, v, a = s.TRIALS, s.TRIAL_VALUES, s.TRIAL_USER_ATTRIBUTES
        with self._engine.connect() as conn:
            per_state = dict(
                conn.execute(
                    sa.select(t.c.state, sa.func.count())
                    .where(t.c.study_id == study_id)
                    .group_by(t.c.state)
                ).all()
            )
            diverged = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.join(a, a.c.trial_id == t.c.trial_id))
                .where(
                    t.c.study_id == study_id,
                    a.c.key == OUTCOME,
                    a.c.value_json == json.dumps(DIVERGED),
                )
            ).scalar_one()
            best = conn.execute(
                sa.select(sa.func.min(v.c.value))
                .select_from(t.join(v, v.c.trial_id == t.c.trial_id))
                .where(
                    t.c.study_id == study_id,
                    t.c.state == TrialState.COMPLETE.name,
                    v.c.objective == 0,
                    v.c.value_type == s.FINITE,
                )
            ).scalar_one()
        return Counts(
            complete=per_state.get(TrialState.COMPLETE.name, 0),
            pruned=per_state.get(TrialState.PRUNED.name, 0),
            running=per_state.get(TrialState.RUNNING.name, 0)
            + per_state.get(TrialState.WAITING.name, 0),
            failed=per_state.get(TrialState.FAIL.name, 0),
            diverged=int(diverged),
            best=float(best) if best is not None else None,
        )

    # -- writes -----------------------------------------------------------------------------

    @staticmethod
    def _set_attrs(conn: sa.Connection, trial_id: int, attrs: Mapping[str, Any]) -> None:
        a = s.TRIAL_USER_ATTRIBUTES
        for key, value in attrs.items():
            conn.execute(a.delete().where(a.c.trial_id == trial_id, a.c.key == key))
            row = {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            conn.execute(a.insert().values(**row))

    def ask(
        self,
        study: optuna.Study,
        distributions: Mapping[str, BaseDistribution],
        attrs: Callable[[int], Mapping[str, Any]],
    ) -> tuple[int, int, dict[str, Any]]:
        # Optuna numbers the trial under its study row lock; the rest is ours: the new trial
        # is read back by one query (not get_trial's one per table), and its parameters and
        # attributes are inserted at once (a new trial has none to replace).
        trial_id = self._optuna.create_new_trial(self.study_id(study.study_name))
        t = s.TRIALS

        def read_back() -> Any:
            with self._engine.connect() as conn:
                return conn.execute(
                    sa.select(t.c.number, t.c.datetime_start).where(t.c.trial_id == trial_id)
                ).one()

        number, start = self._retry(f"asking for a trial of {study.study_name!r}", read_back)
        frozen = FrozenTrial(
            number=number, state=TrialState.RUNNING, value=None, values=None,
            datetime_start=start, datetime_complete=None, params={}, distributions={},
            user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=trial_id,
        )
        params = {
            name: study.sampler.sample_independent(study, frozen, name, dist)
            for name, dist in distributions.items()
        }
        rows = [
            {"trial_id": trial_id, "param_name": name,
             "param_value": dist.to_internal_repr(params[name]),
             "distribution_json": distribution_to_json(dist)}
            for name, dist in distributions.items()
        ]

        def write() -> None:  # the parameters, attributes and first beat all at once
            p, hb = s.TRIAL_PARAMS, s.TRIAL_HEARTBEATS
            with self._engine.begin() as conn:
                conn.execute(p.delete().where(p.c.trial_id == trial_id))  # a retry's rewrite
                if rows:
                    conn.execute(p.insert(), rows)
                self._set_attrs(conn, trial_id, attrs(number))
                # Its grace period starts now, on the database's clock: an owner that dies
                # before its first heartbeat leaves a trial that goes stale like any other.
                conn.execute(hb.delete().where(hb.c.trial_id == trial_id))
                conn.execute(hb.insert().values(trial_id=trial_id,
                                                heartbeat=sa.func.current_timestamp()))

        self._retry(f"asking for a trial of {study.study_name!r}", write)
        return trial_id, int(number), params

    @_retried
    def write_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> bool:
        t = s.TRIALS
        with self._engine.begin() as conn:
            state = conn.execute(
                sa.select(t.c.state).where(t.c.trial_id == trial_id).with_for_update()
            ).scalar_one_or_none()
            if state != TrialState.RUNNING.name:
                return False  # a finished trial is read-only, as in Optuna
            self._set_attrs(conn, trial_id, attrs)
        return True

    @_retried
    def finish_trial(
        self, trial_id: int, state: TrialState, value: float | None, attrs: Mapping[str, Any]
    ) -> bool:
        if not state.is_finished():
            raise ValueError(f"{state.name} is not a finished state")
        if value is not None and not math.isfinite(value):
            raise ValueError(f"trial value {value} is not finite")
        t, v = s.TRIALS, s.TRIAL_VALUES
        with self._engine.begin() as conn:
            won = conn.execute(
                t.update()
                .where(t.c.trial_id == trial_id, t.c.state == TrialState.RUNNING.name)
                .values(state=state.name, datetime_complete=_utcnow())
            ).rowcount
            if won != 1:  # finished already: by someone else, or by our own write whose
                # answer was lost to a dropped connection (then retried: the same outcome)
                return self._finished_as(conn, trial_id, state, attrs)
            if value is not None:
                conn.execute(v.delete().where(v.c.trial_id == trial_id, v.c.objective == 0))
                conn.execute(
                    v.insert().values(
                        trial_id=trial_id, objective=0, value=float(value), value_type=s.FINITE
                    )
                )
            self._set_attrs(conn, trial_id, attrs)
        return True

    @staticmethod
    def _finished_as(
        conn: sa.Connection, trial_id: int, state: TrialState, attrs: Mapping[str, Any]
    ) -> bool:
        """The trial is in ``state`` with this very outcome (so the write was ours)."""
        if OUTCOME not in attrs:
            return False
        t, a = s.TRIALS, s.TRIAL_USER_ATTRIBUTES
        row = conn.execute(
            sa.select(t.c.state, a.c.value_json)
            .select_from(t.outerjoin(a, sa.and_(a.c.trial_id == t.c.trial_id, a.c.key == OUTCOME)))
            .where(t.c.trial_id == trial_id)
        ).first()
        return (row is not None and row[0] == state.name
                and row[1] == json.dumps(attrs[OUTCOME]))

    def _db_now(self, conn: sa.Connection) -> dt.datetime:
        now = conn.execute(sa.text("SELECT CURRENT_TIMESTAMP")).scalar()
        if isinstance(now, str):  # SQLite returns the text of CURRENT_TIMESTAMP (UTC)
            now = dt.datetime.fromisoformat(now)
        return now.replace(tzinfo=None)

    @_retried
    def fail_stale(self, study_name: str, default_interval: float) -> int:
        t, hb, a = s.TRIALS, s.TRIAL_HEARTBEATS, s.TRIAL_USER_ATTRIBUTES
        study_id = self.study_id(study_name)
        query = (
            sa.select(t.c.trial_id, hb.c.heartbeat, a.c.value_json)
            .select_from(
                t.outerjoin(hb, hb.c.trial_id == t.c.trial_id).outerjoin(
                    a, sa.and_(a.c.trial_id == t.c.trial_id, a.c.key == HEARTBEAT_INTERVAL)
                )
            )
            .where(t.c.study_id == study_id, t.c.state == TrialState.RUNNING.name)
        )
        with self._engine.connect() as conn:
            now = self._db_now(conn)
            rows = conn.execute(query).all()
        stale = []
        for trial_id, beat, interval_json in rows:
            if beat is None:
                self._first_seen(trial_id)
                continue
            if isinstance(beat, str):
                beat = dt.datetime.fromisoformat(beat)
            interval = json.loads(interval_json) if interval_json else default_interval
            grace = dt.timedelta(seconds=GRACE_FACTOR * float(interval))
            if now - beat.replace(tzinfo=None) >= grace:
                stale.append(trial_id)
        return sum(
            self.finish_trial(trial_id, TrialState.FAIL, None, {OUTCOME: STALE_REASON})
            for trial_id in stale
        )

    @_retried
    def release_trials(self, study_name: str, launcher: str, reason: str) -> int:
        t, a = s.TRIALS, s.TRIAL_USER_ATTRIBUTES
        with self._engine.connect() as conn:
            mine = conn.execute(
                sa.select(t.c.trial_id)
                .select_from(t.join(a, sa.and_(a.c.trial_id == t.c.trial_id,
                                               a.c.key == LAUNCHER)))
                .where(t.c.study_id == self.study_id(study_name),
                       t.c.state == TrialState.RUNNING.name,
                       a.c.value_json == json.dumps(launcher))
            ).scalars().all()
        return sum(self.finish_trial(trial_id, TrialState.FAIL, None, {OUTCOME: reason})
                   for trial_id in mine)

    def _first_seen(self, trial_id: int) -> None:
        """Start the grace period of a RUNNING trial that never beat (asked by some other
        client, or by a launcher that died before its first beat), on the database's clock."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    s.TRIAL_HEARTBEATS.insert().values(
                        trial_id=trial_id, heartbeat=sa.func.current_timestamp()
                    )
                )
        except IntegrityError:
            pass  # its owner (or another launcher) wrote one first

    @_retried
    def best_number(self, study_name: str) -> int | None:
        """The number of the study's best complete trial (lowest value; ties: lowest number),
        by one indexed query."""
        t, v = s.TRIALS, s.TRIAL_VALUES
        with self._engine.connect() as conn:
            return conn.execute(
                sa.select(t.c.number)
                .select_from(t.join(v, v.c.trial_id == t.c.trial_id))
                .where(t.c.study_id == self.study_id(study_name),
                       t.c.state == TrialState.COMPLETE.name, v.c.objective == 0,
                       v.c.value_type == s.FINITE)
                .order_by(v.c.value, t.c.number).limit(1)
            ).scalar_one_or_none()

    @_retried
    def last_epochs(
        self, study_name: str, numbers: tuple[int, int] | None = None
    ) -> dict[int, tuple[int, dict[str, Any]]]:
        """Per trial number: how many epochs it recorded, and the last epoch's record."""
        t, a = s.TRIALS, s.TRIAL_USER_ATTRIBUTES
        where = [t.c.study_id == self.study_id(study_name), a.c.key.like(f"{EPOCH_PREFIX}%")]
        if numbers is not None:
            where += [t.c.number >= numbers[0], t.c.number < numbers[1]]
        joined = t.join(a, a.c.trial_id == t.c.trial_id)
        per_trial = (
            sa.select(t.c.trial_id, sa.func.count().label("n"), sa.func.max(a.c.key).label("k"))
            .select_from(joined).where(*where).group_by(t.c.trial_id).subquery()
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.number, per_trial.c.n, a.c.value_json)
                .select_from(per_trial.join(t, t.c.trial_id == per_trial.c.trial_id)
                             .join(a, sa.and_(a.c.trial_id == per_trial.c.trial_id,
                                              a.c.key == per_trial.c.k)))
            ).all()
        return {int(number): (int(n), json.loads(value)) for number, n, value in rows}

    @_retried
    def light_trials(
        self, study_name: str, numbers: tuple[int, int] | None = None
    ) -> list[FrozenTrial]:
        """Every trial of the study without its per-epoch records: state, value, parameters,
        outcome, node and the last intermediate value (the final loss), by five queries whatever
        the histories hold. Read a trial whole with ``optuna.get_trial`` when a figure needs
        its curve or weights."""
        study_id = self.study_id(study_name)
        t, v, p = s.TRIALS, s.TRIAL_VALUES, s.TRIAL_PARAMS
        a, iv = s.TRIAL_USER_ATTRIBUTES, s.TRIAL_INTERMEDIATE_VALUES
        in_range = [t.c.study_id == study_id]
        if numbers is not None:  # a page: numbers[0] <= number < numbers[1]
            in_range += [t.c.number >= numbers[0], t.c.number < numbers[1]]
        mine = sa.select(t.c.trial_id).where(*in_range).scalar_subquery()
        last = (
            sa.select(iv.c.trial_id, sa.func.max(iv.c.step).label("step"))
            .where(iv.c.trial_id.in_(mine)).group_by(iv.c.trial_id).subquery()
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.trial_id, t.c.number, t.c.state, t.c.datetime_start,
                          t.c.datetime_complete)
                .where(*in_range).order_by(t.c.number)
            ).all()
            values = dict(conn.execute(
                sa.select(v.c.trial_id, v.c.value)
                .where(v.c.trial_id.in_(mine), v.c.objective == 0, v.c.value_type == s.FINITE)
            ).all())
            params = conn.execute(
                sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json)
                .where(p.c.trial_id.in_(mine))
            ).all()
            attrs = conn.execute(
                sa.select(a.c.trial_id, a.c.key, a.c.value_json)
                .where(a.c.trial_id.in_(mine), a.c.key.in_([OUTCOME, DIVERGED_EPOCH, RAY_NODE_IP]))
            ).all()
            finals = conn.execute(
                sa.select(iv.c.trial_id, iv.c.step, iv.c.intermediate_value)
                .join(last, sa.and_(last.c.trial_id == iv.c.trial_id, last.c.step == iv.c.step))
            ).all()
        by_id: dict[int, dict[str, Any]] = {
            r.trial_id: {"params": {}, "dists": {}, "attrs": {}, "final": {}} for r in rows
        }
        for trial_id, name, internal, dist_json in params:
            dist = json_to_distribution(dist_json)
            by_id[trial_id]["params"][name] = dist.to_external_repr(internal)
            by_id[trial_id]["dists"][name] = dist
        for trial_id, key, value_json in attrs:
            by_id[trial_id]["attrs"][key] = json.loads(value_json)
        for trial_id, step, value in finals:
            by_id[trial_id]["final"] = {int(step): float(value) if value is not None
                                        else math.nan}
        out = []
        for r in rows:
            extra = by_id[r.trial_id]
            value = values.get(r.trial_id)
            out.append(FrozenTrial(
                number=r.number, state=TrialState[r.state], value=value, values=None,
                datetime_start=r.datetime_start, datetime_complete=r.datetime_complete,
                params=extra["params"], distributions=extra["dists"],
                user_attrs=extra["attrs"], system_attrs={},
                intermediate_values=extra["final"], trial_id=r.trial_id,
            ))
        return out

    def record_heartbeat(self, trial_id: int) -> None:
        self._optuna.record_heartbeat(trial_id)

    def close(self) -> None:
        self._optuna.remove_session()
        self._engine.dispose()


def open_storage(url: str, **options: Any) -> SQLStudyStorage:
    """The storage for ``url`` (already resolved); one-line :class:`StorageError` on failure."""
    return SQLStudyStorage(url, **options)
