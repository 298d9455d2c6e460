"""A trial's trained weights, its best epoch's: the ``weights.pt`` artifact, in the study
database or its artifact directory, for the trials its launch's policy keeps (``keep.py``).

Payload: written by ``hwsearch.training.payload.serialize_weights``,
``torch.save({"model_class": "FCNet" | "ConvHighwayNet", "model_config": the model config as a
dict, "state_dict": ...})``. Loading needs only this project's model classes.
torch is imported inside the functions, so the bookkeeping that imports the storage does not
pay for it.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from typing import TYPE_CHECKING

import optuna

from hwsearch.compat import trial_id_of

from .keep import which_have_weights
from .records import WEIGHTS_FILE

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from hwsearch.models.conv import ConvHighwayNet
    from hwsearch.models.fc import FCNet

    from .store import StudyStorage

class NoWeightsError(LookupError):
    """The trial's weights were not kept; the message says which trials of its study have."""


class UnreadableWeightsError(ValueError):
    """The trial's stored weights are not a payload this project wrote (a foreign or damaged
    artifact named ``weights.pt``): a reader skips the trial or says so in one line."""


def upload_weights(store: StudyStorage, trial_id: int, payload: bytes) -> str:
    """Attach ``payload`` to the trial as the ``weights.pt`` artifact, whatever the policy
    (a launch stores through ``keep.WeightKeeper``); returns its id."""
    trial = store.optuna.get_trial(trial_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, WEIGHTS_FILE)
        with open(path, "wb") as f:
            f.write(payload)
        return optuna.artifacts.upload_artifact(
            artifact_store=store.artifacts,
            file_path=path,
            study_or_trial=trial,
            storage=store.optuna,
            mimetype="application/octet-stream",
        )


def weights_artifact_id(store: StudyStorage, trial: FrozenTrial) -> str | None:
    metas = optuna.artifacts.get_all_artifact_meta(trial, storage=store.optuna)
    ids = [m.artifact_id for m in metas if m.filename == WEIGHTS_FILE]
    return ids[-1] if ids else None


def load_trial_model(store: StudyStorage, trial: FrozenTrial) -> FCNet | ConvHighwayNet:
    """Rebuild a finished trial's trained net from its stored weights (on the CPU, eval mode)."""
    import torch

    from hwsearch.models import ConvConfig, FCConfig
    from hwsearch.models.conv import ConvHighwayNet
    from hwsearch.models.fc import FCNet

    artifact_id = weights_artifact_id(store, trial)
    if artifact_id is None:
        raise NoWeightsError(f"trial {trial.number} has no stored weights (its launch kept "
                             f"only some); {which_have_weights(store, trial_id_of(trial))}")
    with store.artifacts.open_reader(artifact_id) as f:
        raw = f.read()
    try:
        payload = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        net, config = {"FCNet": (FCNet, FCConfig),
                       "ConvHighwayNet": (ConvHighwayNet, ConvConfig)}[payload["model_class"]]
        model: FCNet | ConvHighwayNet = net(config(**payload["model_config"]))  # type: ignore[operator]
        model.load_state_dict(payload["state_dict"])
    except Exception as e:  # noqa: BLE001 - whatever the bytes are, the reader needs one line
        raise UnreadableWeightsError(
            f"trial {trial.number}'s stored weights (artifact {artifact_id}, {len(raw)} bytes) "
            f"are not weights this project wrote: {_why_unreadable(raw, e)}") from None
    return model.eval()


def _why_unreadable(raw: bytes, error: Exception) -> str:
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        return f"not a torch.save file (it starts {raw[:16]!r})"
    first = (str(error).splitlines() or [""])[0].strip()
    return f"{type(error).__name__}: {first[:160]}" if first else type(error).__name__
