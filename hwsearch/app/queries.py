"""The read commands ``status``, ``best`` and ``trials``: plain rows from a database that must
exist and is only read (``formats.py`` turns them into text)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from optuna.trial import FrozenTrial

from hwsearch.options import check_name
from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage import records as rec

from .quiet import quiet_optuna
from .storage_url import resolve_storage

PAGE = 1000  # trials read at a time by ``trials``


def open_existing(storage: str | None = None, storage_file: str | None = None) -> StudyStorage:
    """The database for a read command: it must exist, and is neither created nor migrated."""
    quiet_optuna()
    return open_storage(resolve_storage(storage, storage_file), create=False)


def status(
    study: str | None = None, *, storage: str | None = None, storage_file: str | None = None
) -> list[dict[str, Any]]:
    """Per study (or of ``study``, which must exist): its trials per state and best value."""
    check_name("study", study)
    store = open_existing(storage, storage_file)
    try:
        return status_rows(store, study)
    finally:
        store.close()


def best(
    study: str | None = None, *, storage: str | None = None, storage_file: str | None = None
) -> list[dict[str, Any]]:
    """Per study (or of ``study``): its best trial's number, value and parameters."""
    check_name("study", study)
    store = open_existing(storage, storage_file)
    try:
        return best_rows(store, study)
    finally:
        store.close()


def trials(
    study: str, *, storage: str | None = None, storage_file: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every trial of ``study``, a page at a time; the database stays open until the last."""
    check_name("study", study)
    store = open_existing(storage, storage_file)
    try:
        yield from trial_rows(store, study)
    finally:
        store.close()


def status_rows(store: StudyStorage, study_name: str | None = None) -> list[dict[str, Any]]:
    """Per study: its trials per state and its best value, by aggregate queries."""
    rows = []
    for name in _names(store, study_name):
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
        raise LookupError(unknown_study(study_name, names, store.display_url))
    return [study_name]


def unknown_study(study_name: str, names: list[str], display_url: str) -> str:
    """The one line for a study name not in the database: the nearest names first."""
    near = difflib.get_close_matches(study_name, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(map(repr, near))}? " if near else ""
    shown = ", ".join(map(repr, names[:10])) + (", …" if len(names) > 10 else "")
    return (f"no study {study_name!r} in {display_url}; {hint}studies: {shown or 'none'}")
