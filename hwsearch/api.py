"""The Python API, for notebooks and scripts: the command line's use cases as functions over the
same application layer (``hwsearch.app``), returning typed records and pandas frames.

``import hwsearch`` is enough: ``hwsearch.launch``, ``hwsearch.best``, ``hwsearch.trials``,
``hwsearch.load_model``, ``hwsearch.report`` and ``hwsearch.studies`` are these functions.
``storage`` is a database URL as the command line takes it (``sqlite:///search.db``,
``postgresql://user@host/db``); left out, it comes from ``$HWSEARCH_STORAGE`` (or the file named
by ``$HWSEARCH_STORAGE_FILE``), else ``sqlite:///highway-search.db``. A password belongs in that
environment or file, as on the command line. Errors are the layers' typed exceptions
(``ConfigError``, ``StorageError``, ``DataError``, ``LaunchError``, ``LookupError``, ...), whose
messages name a setting as ```name```. docs/api.md shows every function.

    >>> import hwsearch
    >>> [s.study for s in hwsearch.studies(db)]
    ['mnist-highway-d2', 'mnist-plain-d2']
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsearch.app.dashboard import dashboard
from hwsearch.app.export import export, pick_trial
from hwsearch.app.launch import launch as _launch
from hwsearch.app.launch import launch_settings
from hwsearch.app.queries import best_rows, names_of, open_existing, status_rows
from hwsearch.app.queries import status as status
from hwsearch.app.report import report as _report
from hwsearch.app.storage_url import resolve_storage
from hwsearch.app.train import train, train_settings
from hwsearch.options import ConfigError
from hwsearch.storage import records as rec

if TYPE_CHECKING:
    import pandas
    import torch

__all__ = ["BestTrial", "LaunchSummary", "StudyRun", "StudySummary", "best", "dashboard",
           "export", "launch", "load_model", "report", "status", "studies", "train",
           "train_settings", "trials"]


@dataclass(frozen=True)
class StudySummary:
    """One study's counts per state and its best value (``hwsearch status --format json``)."""

    study: str
    complete: int
    diverged: int
    running: int
    failed: int
    best: float | None
    stale: int = 0  # running, but their launcher stopped beating: lost, replaced next launch
    last_beat_s: int | None = None  # the stale trials' latest heartbeat, seconds ago


@dataclass(frozen=True)
class BestTrial:
    """A study's best trial (``hwsearch best --format json``); ``number`` and ``value`` are
    None for a study without a complete trial."""

    study: str
    number: int | None
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyRun:
    """Where one study stands after a launch: finished trials against the target, best value."""

    finished: int
    target: int
    best: float | None


@dataclass(frozen=True)
class LaunchSummary:
    """What a launch ran: each study's standing, the database (password masked), the seconds
    it took, and whether every study reached its target."""

    storage: str
    studies: dict[str, StudyRun]
    seconds: float

    @property
    def complete(self) -> bool:
        return all(s.finished >= s.target for s in self.studies.values())


@contextlib.contextmanager
def _read(storage: str | None) -> Iterator[Any]:
    store = open_existing(storage, None)
    try:
        yield store
    finally:
        store.close()


def studies(storage: str | None = None) -> list[StudySummary]:
    """Every study in ``storage``, with its counts per state and best value.

    >>> s = hwsearch.studies(db)[0]
    >>> (s.study, s.complete, s.running)
    ('mnist-highway-d2', 2, 0)
    """
    with _read(storage) as store:
        return [StudySummary(**row) for row in status_rows(store)]


def best(storage: str | None = None, study: str | None = None) -> list[BestTrial]:
    """The best trial of each study (or of ``study`` alone), the lowest training loss.

    >>> b = hwsearch.best(db, "mnist-plain-d2")[0]
    >>> b.number is not None and sorted(b.params)
    ['activation', 'lr', 'lr_decay', 'momentum']
    """
    with _read(storage) as store:
        return [BestTrial(**row) for row in best_rows(store, study)]


def trials(storage: str | None = None, study: str | None = None, *,
           history: bool = True) -> pandas.DataFrame:
    """One row per trial of ``study``, as Optuna's ``Study.trials_dataframe`` lays them out:
    ``number``, ``value``, ``datetime_start``, ``datetime_complete``, ``duration``, one
    ``params_<name>`` column per hyperparameter and ``state``; then hwsearch's ``outcome``
    (completed or diverged), a running trial's ``last_beat_s`` (seconds since its heartbeat)
    and ``stale`` (past its grace: its launcher is gone), ``epochs`` recorded,
    ``test_accuracy`` (of the stored model, the best epoch's weights, once the trial completed;
    else the last epoch's, if measured), the ``node`` that ran it, and (``history``) the per-epoch
    records as a list of dicts, which ``pandas.DataFrame(row.history)`` turns into a frame.

    >>> df = hwsearch.trials(db, "mnist-plain-d2")
    >>> list(df.columns[:5]), len(df)
    (['number', 'value', 'datetime_start', 'datetime_complete', 'duration'], 2)
    >>> pandas.DataFrame(df.history[0])[["epoch", "train_loss"]].shape
    (1, 2)
    """
    import pandas as pd

    if study is None:
        raise ConfigError("give `study`: trials are read one study at a time")
    with _read(storage) as store:
        (name,) = names_of(store, study)
        if history:
            rows = [_trial_row(t, rec.history(t)) for t in store.optuna.get_all_trials(
                store.study_id(name), deepcopy=False)]
        else:
            epochs = store.last_epochs(name)
            rows = [_trial_row(t, [], *epochs.get(t.number, (0, {})))
                    for t in store.light_trials(name)]
        beats = {b.number: b for b in store.beats(name)}
    for row in rows:  # a running trial's last heartbeat, as `hwsearch trials` shows it
        beat = beats.get(row["number"])
        row["last_beat_s"] = (max(0, round(beat.age)) if beat and beat.age is not None
                              else None)
        row["stale"] = beat.stale if beat else None
    columns = ["number", "value", "datetime_start", "datetime_complete", "duration"]
    params = sorted({k for r in rows for k in r if k.startswith("params_")})
    columns += params + ["state", "outcome", "last_beat_s", "stale", "epochs",
                         "test_accuracy", "node"]
    columns += ["history"] if history else []
    frame = pd.DataFrame(rows, columns=columns)
    frame["duration"] = frame["datetime_complete"] - frame["datetime_start"]
    return frame


def _trial_row(t: Any, history: list[dict[str, Any]], epochs: int | None = None,
               last: dict[str, Any] | None = None) -> dict[str, Any]:
    last = history[-1] if history else (last or {})
    return {
        "number": t.number, "value": t.value, "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete, "duration": None,
        **{f"params_{k}": v for k, v in t.params.items()},
        "state": t.state.name, "outcome": rec.outcome(t),
        "epochs": len(history) if epochs is None else epochs,
        "test_accuracy": rec.test_accuracy(t, last), "node": rec.node_ip(t), "history": history,
    }


def load_model(storage: str | None = None, study: str | None = None, trial: int | None = None,
               device: str = "cpu") -> torch.nn.Module:
    """The trained net of ``trial`` of ``study`` (default: its best trial with stored weights),
    rebuilt from the weights in the database, in eval mode, on ``device``.

    >>> import torch
    >>> net = hwsearch.load_model(db, "mnist-plain-d2")
    >>> net.training, net(torch.zeros(1, 784)).shape
    (False, torch.Size([1, 10]))
    """
    import torch

    from hwsearch.storage.weights import load_trial_model

    if study is None:
        raise ConfigError("give `study`: the model is one study's trial")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"bad `device` {device!r}; allowed: cpu, cuda, cuda:N, mps") from None
    with _read(storage) as store:
        names_of(store, study)
        model = load_trial_model(store, pick_trial(store, study, trial))
    return model.to(target).eval()


def report(storage: str | None = None, out: str | Path = "report", dataset: str = "mnist", *,
           study: str | None = None, data_dir: str | None = None, seed: int = 0,
           skip_data_figures: bool = False, quiet: bool = True) -> Path:
    """Write the papers' figures for ``dataset``'s studies to ``out/index.html``; returns its
    path. ``data_dir`` (the training data) feeds Figure 2 and the lesioning, and is required
    unless ``skip_data_figures``; ``quiet=False`` prints the report's stages on stderr.

    >>> hwsearch.report(db, tmp / "page", data_dir=data_dir).name
    'index.html'
    """
    return _report(out, dataset, study, data_dir, seed, storage=storage,
                   skip_data_figures=skip_data_figures,
                   progress=None if quiet else sys.stderr)


def launch(*, config: str | None = None, quiet: bool = False, **options: Any) -> LaunchSummary:
    """Run (or resume) the random search: ``options`` are ``hwsearch launch``'s flags as
    keywords (``models="plain,highway"``, ``depths="10,50"``, ``trials=12``, ``epochs=5``,
    ``data_dir=...``, ``storage=...``), over the TOML file ``config``, with the same defaults
    and checks; a bad value raises before anything is created. Progress goes to stderr unless
    ``quiet``. Returns each study's finished trials against its target.

    >>> s = hwsearch.launch(storage=db, models="plain", depths="2", trials=2, epochs=1,
    ...                     limit_train=256, data_dir=data_dir, quiet=True)
    >>> s.complete, s.studies["mnist-plain-d2"].finished
    (True, 2)
    """
    start = time.monotonic()
    settings = launch_settings(options, config)
    with open(os.devnull, "w") if quiet else contextlib.nullcontext(sys.stderr) as out:
        result = _launch(settings, out=out)
    bests: dict[str, float | None] = {}
    with contextlib.suppress(Exception), _read(resolve_storage(
            settings.storage, settings.storage_file)) as store:
        bests = {row["study"]: row["value"] for row in best_rows(store)}
    return LaunchSummary(
        storage=result.storage,
        studies={name: StudyRun(done, target, bests.get(name))
                 for name, (done, target) in result.studies.items()},
        seconds=time.monotonic() - start,
    )
