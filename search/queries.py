"""Read-only views of the studies for ``status``, ``best`` and ``trials``: plain rows, then text."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from optuna.trial import FrozenTrial

from hwsearch.storage import StudyStorage
from hwsearch.storage import records as rec


def status_rows(store: StudyStorage) -> list[dict[str, Any]]:
    """Per study: its trials per state and its best value, by aggregate queries."""
    rows = []
    for name in store.study_names():
        c = store.counts(name)
        rows.append(
            {
                "study": name,
                "complete": c.complete,
                "diverged": c.diverged,
                "running": c.running,
                "failed": c.failed,
                "best": c.best,
            }
        )
    return rows


def best_rows(store: StudyStorage, study_name: str | None = None) -> list[dict[str, Any]]:
    """Per study: its best trial, found by an indexed query and read alone."""
    rows = []
    for name in _names(store, study_name):
        number = store.best_number(name)
        if number is None:
            rows.append({"study": name, "number": None, "value": None, "params": {}})
            continue
        best = store.optuna.get_trial(store.trial_id(name, number))
        rows.append({"study": name, "number": number, "value": best.value,
                     "params": best.params})
    return rows


PAGE = 1000  # trials read at a time by ``trials``


def trial_rows(store: StudyStorage, study_name: str) -> Iterator[dict[str, Any]]:
    """Every trial of one study, a page at a time (memory and first-row latency stay flat)."""
    (name,) = _names(store, study_name)
    count = store.counts(name)
    total = count.complete + count.pruned + count.running + count.failed
    for low in range(0, max(total, 1), PAGE):
        page = (low, low + PAGE)
        epochs = store.last_epochs(name, page)
        for t in store.light_trials(name, page):
            n, last = epochs.get(t.number, (0, {}))
            yield _trial_row(t, n, last)


def _trial_row(t: FrozenTrial, epochs: int, last: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "outcome": rec.outcome(t),
        "epochs": epochs,
        "test_accuracy": last.get("test_accuracy"),
        "node": rec.node_ip(t),
        **{f"param_{k}": v for k, v in sorted(t.params.items())},
    }


def _names(store: StudyStorage, study_name: str | None) -> list[str]:
    names = store.study_names()
    if study_name is None:
        return names
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise LookupError(f"no study {study_name!r} in {store.display_url}; studies: {known}")
    return [study_name]


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> None:
    """``rows`` as ``fmt`` on ``out``; CSV streams (a page of rows fixes the columns)."""
    if fmt != "csv":
        print(format_rows(list(rows), fmt), file=out)
        return
    rows = iter(rows)
    first = list(itertools.islice(rows, PAGE))
    flat = [{k: _cell(v) for k, v in r.items()} for r in first]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", restval="",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


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
