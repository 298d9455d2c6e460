"""Whole finished trials written straight into a study, in the trial record's layout
(``hwsearch.storage.records``): for building studies in tests and benchmarks, where a real
search would take minutes. A search itself records as it goes.

``add_finished_trials`` writes many at once: Optuna's ``create_new_trial(template_trial=...)``
inserts a trial's rows one ORM statement at a time (docs/performance.md says how slow that is
for a large study); here each table gets one multi-row insert per batch, in one transaction,
and the rows are exactly those Optuna writes for the same template
(``tests/storage_tests/test_records.py`` compares the two).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from hwsearch.storage import StudyStorage
from hwsearch.storage import schema as s
from hwsearch.storage.records import COMPLETED, DIVERGED, DIVERGED_EPOCH, OUTCOME, epoch_key


def finished_trial(
    params: Mapping[str, Any],
    distributions: Mapping[str, Any],
    epochs: Sequence[Mapping[str, Any]],
    *,
    diverged_epoch: int | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial:
    """A whole finished trial in the layout above, not yet stored (number and id 0): what
    :func:`add_finished_trial` and :func:`add_finished_trials` write.

    ``epochs`` are the per-epoch records (each with ``epoch`` and ``train_loss``); the value
    is their lowest ``train_loss``. With ``diverged_epoch`` the outcome is ``diverged`` (and
    without epochs the trial is PRUNED); else ``completed``."""
    value = min((float(e["train_loss"]) for e in epochs), default=None)
    state = TrialState.PRUNED if value is None else TrialState.COMPLETE
    user_attrs: dict[str, Any] = {epoch_key(int(e["epoch"])): dict(e) for e in epochs}
    user_attrs[OUTCOME] = COMPLETED if diverged_epoch is None else DIVERGED
    if diverged_epoch is not None:
        user_attrs[DIVERGED_EPOCH] = int(diverged_epoch)
    user_attrs.update(attrs or {})
    dists: dict[str, BaseDistribution] = dict(distributions)
    now = dt.datetime.now()
    return FrozenTrial(
        number=0, state=state, value=value, values=None, datetime_start=now,
        datetime_complete=now, params=dict(params), distributions=dists,
        user_attrs=user_attrs, system_attrs={},
        intermediate_values={int(e["epoch"]): float(e["train_loss"]) for e in epochs},
        trial_id=0,
    )


def add_finished_trial(
    store: StudyStorage,
    study_name: str,
    params: Mapping[str, Any],
    distributions: Mapping[str, Any],
    epochs: Sequence[Mapping[str, Any]],
    *,
    diverged_epoch: int | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> int:
    """Write a whole finished trial (:func:`finished_trial`) in one transaction, through
    Optuna: for importing results and building studies in tests (a search records as it
    goes). Returns the trial id."""
    template = finished_trial(params, distributions, epochs, diverged_epoch=diverged_epoch,
                              attrs=attrs)
    return store.optuna.create_new_trial(store.study_id(study_name), template_trial=template)


def add_finished_trials(
    store: StudyStorage, study_name: str, trials: Sequence[FrozenTrial]
) -> list[int]:
    """Write many finished trials (from :func:`finished_trial`) in one transaction, a
    multi-row insert per table: the same rows as :func:`add_finished_trial`, about a hundred
    times faster (large imports, the scale benchmark's studies). Returns their trial ids."""
    return insert_finished(store, study_name, trials)



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
