"""Read-only views of the studies for ``status``, ``best`` and ``trials``: plain rows, then text."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hwsearch.storage import StudyStorage

from .studies import counts


def status_rows(store: StudyStorage) -> list[dict[str, Any]]:
    rows = []
    for study in store.studies():
        c = counts(study.get_trials(deepcopy=False))
        rows.append(
            {
                "study": study.study_name,
                "complete": c.complete,
                "diverged": c.diverged,
                "running": c.running,
                "failed": c.failed,
                "best": c.best,
            }
        )
    return rows


def best_rows(store: StudyStorage, study_name: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for study in _studies(store, study_name):
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            rows.append({"study": study.study_name, "number": None, "value": None, "params": {}})
            continue
        best = min(complete, key=lambda t: t.value if t.value is not None else math.inf)
        rows.append(
            {
                "study": study.study_name,
                "number": best.number,
                "value": best.value,
                "params": best.params,
            }
        )
    return rows


def trial_rows(store: StudyStorage, study_name: str) -> list[dict[str, Any]]:
    (study,) = _studies(store, study_name)
    return [_trial_row(t) for t in study.get_trials(deepcopy=False)]


def _trial_row(t: FrozenTrial) -> dict[str, Any]:
    history = t.user_attrs.get("history", [])
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "outcome": t.user_attrs.get("outcome", ""),
        "epochs": len(history),
        "test_accuracy": history[-1].get("test_accuracy") if history else None,
        "node": t.user_attrs.get("ray_node_ip", ""),
        **{f"param_{k}": v for k, v in sorted(t.params.items())},
    }


def _studies(store: StudyStorage, study_name: str | None) -> list[optuna.Study]:
    if study_name is None:
        return list(store.studies())
    if study_name not in store.study_names():
        known = ", ".join(store.study_names()) or "none"
        raise LookupError(f"no study {study_name!r} in {store.display_url}; studies: {known}")
    return [optuna.load_study(study_name=study_name, storage=store.optuna)]


def format_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    flat = [{k: _cell(v) for k, v in r.items()} for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue().rstrip("\n")
    if not flat:
        return "(no rows)"
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in flat)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in flat]
    return "\n".join(line.rstrip() for line in lines)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return " ".join(f"{k}={_cell(x)}" for k, x in sorted(v.items()))
    return str(v)
