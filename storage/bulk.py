"""Many finished trials written at once, in Optuna's schema: imports and benchmark studies.

Optuna's ``create_new_trial(template_trial=...)`` inserts a trial's rows one ORM statement at a
time, about 0.2 s for a trial with a 50-epoch history on a loaded machine: a 10,000-trial study
took most of an hour. Here each table gets one multi-row insert per batch of trials, in one
transaction, and the rows are exactly those Optuna writes for the same template (the trial
record's tests compare the two).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial

from . import schema as s

if TYPE_CHECKING:
    from .base import StudyStorage


def _intermediate(value: float) -> tuple[float | None, str]:
    """A step's value and type, as Optuna stores it (non-finite values by type alone)."""
    if math.isnan(value):
        return None, "NAN"
    if math.isinf(value):
        return None, "INF_POS" if value > 0 else "INF_NEG"
    return float(value), "FINITE"


def insert_finished(
    store: StudyStorage, study_name: str, trials: Sequence[FrozenTrial]
) -> list[int]:
    """Add ``trials`` (finished templates: state, value, params, user attributes, intermediate
    values, datetimes; their numbers and ids are ignored) to the study, numbered after its
    existing trials; returns their trial ids in order.

    Under the study's claim, and with its row locked as Optuna locks it to number a trial, so
    the numbers stay unique beside launchers and Optuna's own asks."""
    study_id = store.study_id(study_name)
    if not trials:
        return []
    t = s.TRIALS
    with store.claim(study_name), store.optuna.engine.begin() as conn:
        conn.execute(
            sa.select(s.STUDIES.c.study_id)
            .where(s.STUDIES.c.study_id == study_id).with_for_update()
        )
        first = conn.execute(
            sa.select(sa.func.count()).select_from(t).where(t.c.study_id == study_id)
        ).scalar_one()
        ids = [row.trial_id for row in conn.execute(
            t.insert().returning(t.c.trial_id, sort_by_parameter_order=True),
            [{"study_id": study_id, "number": first + i, "state": tr.state.name,
              "datetime_start": tr.datetime_start, "datetime_complete": tr.datetime_complete}
             for i, tr in enumerate(trials)],
        )]
        values, params, attrs, steps = [], [], [], []
        for trial_id, tr in zip(ids, trials, strict=True):
            if tr.value is not None:
                values.append({"trial_id": trial_id, "objective": 0, "value": float(tr.value),
                               "value_type": s.FINITE})
            for name, value in tr.params.items():
                dist = tr.distributions[name]
                params.append({"trial_id": trial_id, "param_name": name,
                               "param_value": dist.to_internal_repr(value),
                               "distribution_json": distribution_to_json(dist)})
            for key, value in tr.user_attrs.items():
                attrs.append({"trial_id": trial_id, "key": key, "value_json": json.dumps(value)})
            for step, value in tr.intermediate_values.items():
                v, kind = _intermediate(value)
                steps.append({"trial_id": trial_id, "step": int(step), "intermediate_value": v,
                              "intermediate_value_type": kind})
        for table, rows in ((s.TRIAL_VALUES, values), (s.TRIAL_PARAMS, params),
                            (s.TRIAL_USER_ATTRIBUTES, attrs),
                            (s.TRIAL_INTERMEDIATE_VALUES, steps)):
            if rows:
                conn.execute(table.insert(), rows)
    return ids
