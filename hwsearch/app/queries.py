"""The read commands ``status``, ``best`` and ``trials``: plain rows from a database that must
exist and is only read (``formats.py`` turns them into text)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from optuna.trial import FrozenTrial

from hwsearch.options import check_name, did_you_mean
from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage import records as rec
from hwsearch.storage.queries import Beat

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
    for name in names_of(store, study_name):
        c = store.counts(name)
        stale = [b for b in store.beats(name) if b.stale] if c.running else []
        rows.append(
            {
                "study": name,
                "complete": c.complete,
                "diverged": c.diverged,
                "running": c.running,
                # Running, but their launcher has not beaten for longer than their grace: it
                # was killed or lost; the next launch fails and replaces them.
                "stale": len(stale),
                "last_beat_s": _age(min(b.age for b in stale if b.age is not None))
                if stale else None,
                "failed": c.failed,
                "best": c.best,
            }
        )
    return rows


def _age(seconds: float) -> int:
    return max(0, round(seconds))


def best_rows(store: StudyStorage, study_name: str | None = None) -> list[dict[str, Any]]:
    """Per study: its best trial, found by an indexed query and read alone."""
    rows = []
    for name in names_of(store, study_name):
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
    (name,) = names_of(store, study_name)
    count = store.counts(name)
    total = count.complete + count.pruned + count.running + count.failed
    beats = {b.number: b for b in store.beats(name)} if count.running else {}
    for low in range(0, max(total, 1), PAGE):
        page = (low, low + PAGE)
        epochs = store.last_epochs(name, page)
        for t in store.light_trials(name, page):
            n, last = epochs.get(t.number, (0, {}))
            yield _trial_row(t, n, last, beats.get(t.number))


def _trial_row(
    t: FrozenTrial, epochs: int, last: dict[str, Any], beat: Beat | None
) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "outcome": rec.outcome(t),
        # A RUNNING trial's last heartbeat, seconds ago, and whether that is past its grace.
        "last_beat_s": _age(beat.age) if beat and beat.age is not None else None,
        "stale": beat.stale if beat else None,
        "epochs": epochs,
        "test_accuracy": rec.test_accuracy(t, last),  # the stored model's, else the last epoch's
        "node": rec.node_ip(t),
        **{f"param_{k}": v for k, v in sorted(t.params.items())},
    }


def names_of(store: StudyStorage, study_name: str | None) -> list[str]:
    """Every study's name, or ``[study_name]`` when it exists (else a LookupError that
    suggests the nearest name)."""
    names = store.study_names()
    if study_name is None:
        return names
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise LookupError(f"no study {study_name!r} in {store.display_url}"
                          f"{did_you_mean(study_name, names)}; studies: {known}")
    return [study_name]

