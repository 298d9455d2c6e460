"""The read side: what a study holds, answered by queries that never load trial bodies.

Bookkeeping (counts, the best trial, the last epochs, whole-study views) must not cost more as
a study's histories grow, so each answer here is a few aggregate or indexed queries over
Optuna's tables (``schema.py``), never Optuna's load-every-trial API.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from . import schema as s
from .database import Database
from .records import (
    DIVERGED,
    DIVERGED_EPOCH,
    EPOCH_PREFIX,
    GRACE_FACTOR,
    HEARTBEAT_INTERVAL,
    OUTCOME,
    RAY_NODE_IP,
    TEST_ACCURACY,
    Counts,
)

Numbers = tuple[int, int] | None  # a page of trials: numbers[0] <= number < numbers[1]


@dataclass(frozen=True)
class Beat:
    """A RUNNING trial's last heartbeat: its age (None: it never beat) and its grace period
    (``GRACE_FACTOR`` times its owner's recorded interval), in seconds on the database's clock.
    Past its grace its launcher is taken for lost: a launcher fails it and asks a replacement."""

    trial_id: int
    number: int
    age: float | None
    grace: float

    @property
    def stale(self) -> bool:
        return self.age is not None and self.age >= self.grace


class Queries:
    def __init__(self, db: Database, optuna_storage: optuna.storages.RDBStorage) -> None:
        self.db, self._optuna = db, optuna_storage
        self._study_ids: dict[str, int] = {}

    def beats(self, study_name: str, default_interval: float) -> list[Beat]:
        """The last heartbeat of each RUNNING trial of the study (``default_interval`` for a
        trial whose owner recorded none); one query, read on the database's clock."""
        t, hb, a = s.TRIALS, s.TRIAL_HEARTBEATS, s.TRIAL_USER_ATTRIBUTES
        query = (
            sa.select(t.c.trial_id, t.c.number, hb.c.heartbeat, a.c.value_json)
            .select_from(t.outerjoin(hb, hb.c.trial_id == t.c.trial_id).outerjoin(
                a, sa.and_(a.c.trial_id == t.c.trial_id, a.c.key == HEARTBEAT_INTERVAL)))
            .where(t.c.study_id == self.study_id(study_name),
                   t.c.state == TrialState.RUNNING.name)
            .order_by(t.c.number)
        )
        now, rows = self.db.read("reading heartbeats",
                                 lambda conn: (Database.now(conn), conn.execute(query).all()))
        out = []
        for trial_id, number, beat, interval_json in rows:
            if isinstance(beat, str):
                beat = dt.datetime.fromisoformat(beat)
            age = None if beat is None else (now - beat.replace(tzinfo=None)).total_seconds()
            interval = json.loads(interval_json) if interval_json else default_interval
            out.append(Beat(int(trial_id), int(number), age, GRACE_FACTOR * float(interval)))
        return out

    def study_names(self) -> list[str]:
        return sorted(self.db.read("in study_names", lambda conn: conn.execute(
            sa.select(s.STUDIES.c.study_name)).scalars().all()))

    def study_id(self, study_name: str) -> int:
        """The study's id; :class:`KeyError` when there is none of that name."""
        if study_name not in self._study_ids:
            found = self.db.read("in study_id", lambda conn: conn.execute(
                sa.select(s.STUDIES.c.study_id).where(s.STUDIES.c.study_name == study_name)
            ).scalar_one_or_none())
            if found is None:
                raise KeyError(study_name)
            self._study_ids[study_name] = int(found)
        return self._study_ids[study_name]

    def trial_id(self, study_name: str, number: int) -> int:
        return self._optuna.get_trial_id_from_study_id_trial_number(
            self.study_id(study_name), number
        )

    def counts(self, study_name: str) -> Counts:
        """Trials per state and the best complete value, by aggregate queries."""
        study_id = self.study_id(study_name)
        t, v, a = s.TRIALS, s.TRIAL_VALUES, s.TRIAL_USER_ATTRIBUTES

        def query(conn: sa.Connection) -> Counts:
            per_state = dict(conn.execute(
                sa.select(t.c.state, sa.func.count()).where(t.c.study_id == study_id)
                .group_by(t.c.state)
            ).all())
            diverged = conn.execute(
                sa.select(sa.func.count()).select_from(t.join(a, a.c.trial_id == t.c.trial_id))
                .where(t.c.study_id == study_id, a.c.key == OUTCOME,
                       a.c.value_json == json.dumps(DIVERGED))
            ).scalar_one()
            best = conn.execute(
                sa.select(sa.func.min(v.c.value))
                .select_from(t.join(v, v.c.trial_id == t.c.trial_id))
                .where(t.c.study_id == study_id, t.c.state == TrialState.COMPLETE.name,
                       v.c.objective == 0, v.c.value_type == s.FINITE)
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

        return self.db.read("in counts", query)

    def best_number(self, study_name: str) -> int | None:
        """The number of the study's best complete trial (lowest value; ties: lowest number),
        by one indexed query."""
        study_id = self.study_id(study_name)
        t, v = s.TRIALS, s.TRIAL_VALUES
        return self.db.read("in best_number", lambda conn: conn.execute(
            sa.select(t.c.number)
            .select_from(t.join(v, v.c.trial_id == t.c.trial_id))
            .where(t.c.study_id == study_id, t.c.state == TrialState.COMPLETE.name,
                   v.c.objective == 0, v.c.value_type == s.FINITE)
            .order_by(v.c.value, t.c.number).limit(1)
        ).scalar_one_or_none())

    def last_epochs(
        self, study_name: str, numbers: Numbers = None
    ) -> dict[int, tuple[int, dict[str, Any]]]:
        """Per trial number: how many epochs it recorded, and the last epoch's record."""
        t, a = s.TRIALS, s.TRIAL_USER_ATTRIBUTES
        where = [t.c.study_id == self.study_id(study_name), a.c.key.like(f"{EPOCH_PREFIX}%")]
        if numbers is not None:
            where += [t.c.number >= numbers[0], t.c.number < numbers[1]]
        per_trial = (
            sa.select(t.c.trial_id, sa.func.count().label("n"), sa.func.max(a.c.key).label("k"))
            .select_from(t.join(a, a.c.trial_id == t.c.trial_id)).where(*where)
            .group_by(t.c.trial_id).subquery()
        )
        rows = self.db.read("in last_epochs", lambda conn: conn.execute(
            sa.select(t.c.number, per_trial.c.n, a.c.value_json)
            .select_from(per_trial.join(t, t.c.trial_id == per_trial.c.trial_id)
                         .join(a, sa.and_(a.c.trial_id == per_trial.c.trial_id,
                                          a.c.key == per_trial.c.k)))
        ).all())
        return {int(number): (int(n), json.loads(value)) for number, n, value in rows}

    def light_trials(self, study_name: str, numbers: Numbers = None) -> list[FrozenTrial]:
        """Every trial (or a page of them) without its per-epoch records: state, value,
        parameters, outcome, node, test accuracy and the last intermediate value (the final
        loss), by five queries whatever the histories hold. Read a trial whole with
        ``optuna.get_trial`` when a figure needs its curve or weights."""
        study_id = self.study_id(study_name)
        t, v, p = s.TRIALS, s.TRIAL_VALUES, s.TRIAL_PARAMS
        a, iv = s.TRIAL_USER_ATTRIBUTES, s.TRIAL_INTERMEDIATE_VALUES
        in_range = [t.c.study_id == study_id]
        if numbers is not None:
            in_range += [t.c.number >= numbers[0], t.c.number < numbers[1]]
        mine = sa.select(t.c.trial_id).where(*in_range).scalar_subquery()
        last = (
            sa.select(iv.c.trial_id, sa.func.max(iv.c.step).label("step"))
            .where(iv.c.trial_id.in_(mine)).group_by(iv.c.trial_id).subquery()
        )

        def query(conn: sa.Connection) -> tuple[Any, ...]:
            return (
                conn.execute(sa.select(t.c.trial_id, t.c.number, t.c.state, t.c.datetime_start,
                                       t.c.datetime_complete)
                             .where(*in_range).order_by(t.c.number)).all(),
                dict(conn.execute(sa.select(v.c.trial_id, v.c.value).where(
                    v.c.trial_id.in_(mine), v.c.objective == 0, v.c.value_type == s.FINITE))
                    .all()),
                conn.execute(sa.select(p.c.trial_id, p.c.param_name, p.c.param_value,
                                       p.c.distribution_json)
                             .where(p.c.trial_id.in_(mine))).all(),
                conn.execute(sa.select(a.c.trial_id, a.c.key, a.c.value_json).where(
                    a.c.trial_id.in_(mine),
                    a.c.key.in_([OUTCOME, DIVERGED_EPOCH, RAY_NODE_IP, TEST_ACCURACY]))).all(),
                conn.execute(sa.select(iv.c.trial_id, iv.c.step, iv.c.intermediate_value)
                             .join(last, sa.and_(last.c.trial_id == iv.c.trial_id,
                                                 last.c.step == iv.c.step))).all(),
            )

        rows, values, params, attrs, finals = self.db.read("in light_trials", query)
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
        return [
            FrozenTrial(
                number=r.number, state=TrialState[r.state], value=values.get(r.trial_id),
                values=None, datetime_start=r.datetime_start,
                datetime_complete=r.datetime_complete, params=by_id[r.trial_id]["params"],
                distributions=by_id[r.trial_id]["dists"], user_attrs=by_id[r.trial_id]["attrs"],
                system_attrs={}, intermediate_values=by_id[r.trial_id]["final"],
                trial_id=r.trial_id,
            )
            for r in rows
        ]
