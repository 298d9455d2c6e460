"""The export: a trial's trained model as a ``torch.export`` program in a file
(``hwsearch.models.export`` says what the program is). The weights are the trial's stored
ones, i.e. those of the epoch that achieved its value.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from optuna.trial import FrozenTrial, TrialState

from hwsearch.options import check_name, did_you_mean
from hwsearch.output import check_writable
from hwsearch.storage import StudyStorage
from hwsearch.storage.keep import kept_numbers
from hwsearch.storage.records import STUDY_SPEC
from hwsearch.storage.weights import load_trial_model, weights_artifact_id
from hwsearch.training import DATASETS

from .queries import open_existing


class ExportError(ValueError):
    """The export cannot be made as asked; the message says why in one line."""


def pick_trial(store: StudyStorage, study: str, number: int | None) -> FrozenTrial:
    """Trial ``number`` of ``study``, else its best complete trial with stored weights."""
    if study not in store.study_names():
        known = ", ".join(store.study_names()) or "none"
        near = did_you_mean(study, store.study_names())
        raise ExportError(f"no study {study!r} in {store.display_url}{near}; studies: {known}")
    trials = store.optuna.get_all_trials(store.study_id(study), deepcopy=False)
    if number is not None:
        found = [t for t in trials if t.number == number]
        if not found:
            raise ExportError(
                f"study {study!r} has no trial {number} (trials 0..{len(trials) - 1})"
            )
        trial = found[0]
        if trial.state != TrialState.COMPLETE or weights_artifact_id(store, trial) is None:
            raise ExportError(f"trial {number} of {study!r} is {trial.state.name} without stored "
                              f"weights; {_with_weights(store, study)}")
        return trial
    by_number = {t.number: t for t in trials}
    for kept in kept_numbers(store, study):  # best first
        trial = by_number[kept]
        if trial.state == TrialState.COMPLETE and trial.value is not None and math.isfinite(
                trial.value):
            return trial
    raise ExportError(f"study {study!r} has no complete trial with stored weights")


def _with_weights(store: StudyStorage, study: str) -> str:
    numbers = kept_numbers(store, study)
    if not numbers:
        return "no trial of it has stored weights"
    return "trials with weights: " + ", ".join(map(str, numbers))


def export(
    study: str, out: str | Path, trial: int | None = None, *, storage: str | None = None,
    storage_file: str | None = None,
) -> Path:
    """Write ``trial`` (default: the best) of ``study`` to the new file ``out``; returns it."""
    check_name("study", study)
    store = open_existing(storage, storage_file)
    try:
        return export_trial(store, study, trial, out)
    finally:
        store.close()


def export_trial(store: StudyStorage, study: str, number: int | None, out: str | Path) -> Path:
    """Write trial ``number`` (default: the best) of ``study`` to ``out``; returns the path.

    An existing ``out`` is refused (nothing is overwritten); the file appears whole or not at
    all (written beside it, then renamed).
    """
    import torch

    from hwsearch.models.export import export_model

    out = Path(out)
    if out.exists() or out.is_symlink():
        raise ExportError(f"`out` {out} exists; give a new path")
    if not out.parent.is_dir():
        raise ExportError(f"`out` {out}: directory {out.parent} does not exist")
    check_writable(out, out.parent)
    trial = pick_trial(store, study, number)
    dataset = dict(store.optuna.get_study_user_attrs(store.study_id(study)).get(STUDY_SPEC, {}))
    info = DATASETS.get(str(dataset.get("dataset", "")))
    if info is None:
        raise ExportError(f"study {study!r} records no known dataset, so the input shape is "
                          "unknown")
    model = load_trial_model(store, trial)
    program = export_model(model, info.shape)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        torch.export.save(program, tmp)
        os.replace(tmp, out)
    except OSError as e:  # a full disk, a quota: nothing half-written stays
        raise ExportError(f"cannot write `out` {out}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
