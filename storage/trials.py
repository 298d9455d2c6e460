"""The write side: asking a study for a trial, recording it, finishing it, and failing the
trials of launchers that stopped.

Optuna's API cannot finish a trial and record why in one transaction, and ``Study.ask`` loads
every trial of the study to serve its cache; so these writes go to Optuna's tables directly
(``schema.py``), each in one transaction, and each safe to retry: a write whose answer was lost
to a dropped connection is recognised when it is made again.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError

from . import schema as s
from .database import Database, utcnow
from .queries import Queries
from .records import (
    ACTIVE,
    ASK_TOKEN,
    FINISHED,
    LAUNCHER,
    OUTCOME,
)

STALE_REASON = "launcher lost (no heartbeat within the grace period); replaced"


def _set_attrs(conn: sa.Connection, trial_id: int, attrs: Mapping[str, Any]) -> None:
    a = s.TRIAL_USER_ATTRIBUTES
    for key, value in attrs.items():
        conn.execute(a.delete().where(a.c.trial_id == trial_id, a.c.key == key))
        conn.execute(a.insert().values(trial_id=trial_id, key=key, value_json=json.dumps(value)))


def _taken(conn: sa.Connection, study_id: int) -> int:
    """The study's trials that count towards its target: finished, or running (or waiting)."""
    t = s.TRIALS
    return conn.execute(sa.select(sa.func.count()).select_from(t).where(
        t.c.study_id == study_id, t.c.state.in_([x.name for x in (*FINISHED, *ACTIVE)]))
    ).scalar_one()


def _draw(study: optuna.Study, distributions: Mapping[str, BaseDistribution], trial_id: int,
          number: int, start: Any) -> dict[str, Any]:
    """The trial's parameters, drawn by the study's sampler (ours reads nothing: it draws
    from the study's seed and the trial's number)."""
    frozen = FrozenTrial(
        number=number, state=TrialState.RUNNING, value=None, values=None,
        datetime_start=start, datetime_complete=None, params={}, distributions={},
        user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=trial_id,
    )
    return {name: study.sampler.sample_independent(study, frozen, name, dist)
            for name, dist in distributions.items()}


class Trials:
    def __init__(
        self, db: Database, optuna_storage: optuna.storages.RDBStorage, queries: Queries
    ) -> None:
        self.db, self._optuna, self._queries = db, optuna_storage, queries

    def ask(
        self,
        study: optuna.Study,
        distributions: Mapping[str, BaseDistribution],
        attrs: Callable[[int], Mapping[str, Any]],
        target: int | None = None,
    ) -> tuple[int, int, dict[str, Any]] | None:
        """A new RUNNING trial of ``study``, its parameters drawn by the study's sampler, with
        the user attributes ``attrs(number)`` and its first heartbeat (the database's clock):
        ``(trial_id, number, params)``; None, and nothing written, when the study already has
        ``target`` trials finished or running.

        One transaction, under a lock on the study's row (an UPDATE of it: a row lock on
        PostgreSQL, the write lock on SQLite; Optuna's own ``create_new_trial`` waits for it
        too): the count, the trial's number, its parameters, attributes and first beat. So the
        count is exact whatever became of the claim (an advisory lock dies with a restarting
        server while its holder still counts on it). Each ask carries a token
        (``records.ASK_TOKEN``): a retry whose first commit went through, its answer lost with
        the connection, finds the trial it made instead of making another."""
        study_id = self._queries.study_id(study.study_name)
        token, tries = uuid.uuid4().hex, [0]

        def write(conn: sa.Connection) -> tuple[int, int, dict[str, Any]] | None:
            st, t = s.STUDIES, s.TRIALS
            conn.execute(st.update().where(st.c.study_id == study_id)
                         .values(study_name=st.c.study_name))  # the lock, held to the commit
            tries[0] += 1
            made = self._asked(conn, study_id, token, distributions) if tries[0] > 1 else None
            if made is not None:
                return made
            if target is not None and _taken(conn, study_id) >= target:
                return None
            number = conn.execute(sa.select(sa.func.count()).select_from(t)
                                  .where(t.c.study_id == study_id)).scalar_one()
            start = utcnow()
            trial_id = conn.execute(t.insert().values(
                number=number, study_id=study_id, state=TrialState.RUNNING.name,
                datetime_start=start)).inserted_primary_key[0]
            params = _draw(study, distributions, trial_id, number, start)
            rows = [{"trial_id": trial_id, "param_name": name,
                     "param_value": dist.to_internal_repr(params[name]),
                     "distribution_json": distribution_to_json(dist)}
                    for name, dist in distributions.items()]
            if rows:
                conn.execute(s.TRIAL_PARAMS.insert(), rows)
            _set_attrs(conn, trial_id, {**attrs(number), ASK_TOKEN: token})
            # Its grace period starts now, on the database's clock: an owner that dies before
            # its first heartbeat leaves a trial that goes stale like any other.
            conn.execute(s.TRIAL_HEARTBEATS.insert().values(
                trial_id=trial_id, heartbeat=sa.func.current_timestamp()))
            return int(trial_id), int(number), params

        return self.db.write(f"asking for a trial of {study.study_name!r}", write)

    @staticmethod
    def _asked(
        conn: sa.Connection, study_id: int, token: str,
        distributions: Mapping[str, BaseDistribution],
    ) -> tuple[int, int, dict[str, Any]] | None:
        """The trial an earlier try of this very ask made, with its stored parameters."""
        t, a, p = s.TRIALS, s.TRIAL_USER_ATTRIBUTES, s.TRIAL_PARAMS
        row = conn.execute(
            sa.select(t.c.trial_id, t.c.number)
            .select_from(t.join(a, a.c.trial_id == t.c.trial_id))
            .where(t.c.study_id == study_id, a.c.key == ASK_TOKEN,
                   a.c.value_json == json.dumps(token))
        ).first()
        if row is None:
            return None
        stored = dict(conn.execute(sa.select(p.c.param_name, p.c.param_value)
                                   .where(p.c.trial_id == row[0])).all())
        params = {name: dist.to_external_repr(stored[name])
                  for name, dist in distributions.items()}
        return int(row[0]), int(row[1]), params

    def write_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> bool:
        """Set user attributes of a RUNNING trial in one transaction; False, and nothing
        written, when it has finished (finished trials are read-only, as in Optuna)."""
        t = s.TRIALS

        def write(conn: sa.Connection) -> bool:
            state = conn.execute(
                sa.select(t.c.state).where(t.c.trial_id == trial_id).with_for_update()
            ).scalar_one_or_none()
            if state != TrialState.RUNNING.name:
                return False
            _set_attrs(conn, trial_id, attrs)
            return True

        return self.db.write("in write_attrs", write)

    def finish_trial(
        self, trial_id: int, state: TrialState, value: float | None, attrs: Mapping[str, Any],
        then: Callable[[sa.Connection], None] | None = None,
    ) -> bool:
        """Finish a RUNNING trial: state, value and user attributes in one transaction, and
        ``then`` in it when this call wins (its weights: ``keep.py``). False, and nothing
        written, when it had already finished (say another launcher took it over): whoever
        finishes a trial first wins, and says why in the same write."""
        if not state.is_finished():
            raise ValueError(f"{state.name} is not a finished state")
        if value is not None and not math.isfinite(value):
            raise ValueError(f"trial value {value} is not finite")
        t, v = s.TRIALS, s.TRIAL_VALUES

        def write(conn: sa.Connection) -> bool:
            won = conn.execute(
                t.update().where(t.c.trial_id == trial_id, t.c.state == TrialState.RUNNING.name)
                .values(state=state.name, datetime_complete=utcnow())
            ).rowcount
            if won != 1:  # finished already: by someone else, or by our own write whose
                # answer was lost to a dropped connection (then retried: the same outcome)
                return self._finished_as(conn, trial_id, state, attrs)
            if value is not None:
                conn.execute(v.delete().where(v.c.trial_id == trial_id, v.c.objective == 0))
                conn.execute(v.insert().values(trial_id=trial_id, objective=0,
                                               value=float(value), value_type=s.FINITE))
            _set_attrs(conn, trial_id, attrs)
            if then is not None:
                then(conn)
            return True

        return self.db.write("in finish_trial", write)

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

    def fail_stale(self, study_name: str, default_interval: float) -> int:
        """Fail the study's RUNNING trials whose launcher stopped beating; returns how many.

        A trial is stale when its last heartbeat is older than ``GRACE_FACTOR`` times its
        owner's recorded heartbeat interval (``default_interval`` for trials that recorded
        none), on the database's clock. :meth:`ask` writes a trial's first beat, so the grace
        period of one whose owner never beat counts from its start; a trial asked elsewhere
        (no beat at all) starts its grace period when a launcher first sees it."""
        stale = []
        for beat in self._queries.beats(study_name, default_interval):
            if beat.age is None:
                self._first_seen(beat.trial_id)
            elif beat.stale:
                stale.append(beat.trial_id)
        return sum(self.finish_trial(trial_id, TrialState.FAIL, None, {OUTCOME: STALE_REASON})
                   for trial_id in stale)

    def release_trials(self, study_name: str, launcher: str, reason: str) -> int:
        """Fail the study's RUNNING trials asked by ``launcher`` (its recorded id), saying
        ``reason``; returns how many. A launcher that stops hands its trials back this way,
        including one asked but not yet handed to a pack when the stop came."""
        t, a = s.TRIALS, s.TRIAL_USER_ATTRIBUTES
        study_id = self._queries.study_id(study_name)
        mine = self.db.read("in release_trials", lambda conn: conn.execute(
            sa.select(t.c.trial_id)
            .select_from(t.join(a, sa.and_(a.c.trial_id == t.c.trial_id, a.c.key == LAUNCHER)))
            .where(t.c.study_id == study_id, t.c.state == TrialState.RUNNING.name,
                   a.c.value_json == json.dumps(launcher))
        ).scalars().all())
        return sum(self.finish_trial(trial_id, TrialState.FAIL, None, {OUTCOME: reason})
                   for trial_id in mine)

    def _first_seen(self, trial_id: int) -> None:
        """Start the grace period of a RUNNING trial that never beat (asked by some other
        client, or by a launcher that died before its first beat), on the database's clock."""
        try:
            with self.db.engine.begin() as conn:
                conn.execute(s.TRIAL_HEARTBEATS.insert().values(
                    trial_id=trial_id, heartbeat=sa.func.current_timestamp()))
        except IntegrityError:
            pass  # its owner (or another launcher) wrote one first

    def record_heartbeat(self, trial_id: int) -> None:
        """Tell other launchers that this trial's owner is alive (the database's clock)."""
        self._optuna.record_heartbeat(trial_id)
