"""A trial's trained weights, its best epoch's: the ``weights.pt`` artifact, kept in the study
database itself.

Payload: ``torch.save({"model_class": "FCNet" | "ConvHighwayNet", "model_config": the model
config as a dict, "state_dict": ...})``. Loading needs only this project's model classes.
torch is imported inside the functions, so the bookkeeping that imports the storage does not
pay for it.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import asdict
from typing import TYPE_CHECKING

import optuna

from .base import StudyStorage
from .records import WEIGHTS_FILE

if TYPE_CHECKING:
    import torch
    from optuna.trial import FrozenTrial

    from hwsearch.models import ConvConfig, FCConfig
    from hwsearch.models.conv import ConvHighwayNet
    from hwsearch.models.fc import FCNet


def serialize_weights(
    model_config: FCConfig | ConvConfig, state_dict: dict[str, torch.Tensor]
) -> bytes:
    import torch

    from hwsearch.models import FCConfig

    buf = io.BytesIO()
    torch.save(
        {
            "model_class": "FCNet" if isinstance(model_config, FCConfig) else "ConvHighwayNet",
            "model_config": asdict(model_config),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        },
        buf,
    )
    return buf.getvalue()


def upload_weights(store: StudyStorage, trial_id: int, payload: bytes) -> str:
    """Attach ``payload`` to the trial as the ``weights.pt`` artifact; returns its id."""
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
        raise LookupError(f"trial {trial.number} has no stored weights")
    with store.artifacts.open_reader(artifact_id) as f:
        payload = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    if payload["model_class"] == "FCNet":
        model: FCNet | ConvHighwayNet = FCNet(FCConfig(**payload["model_config"]))
    else:
        model = ConvHighwayNet(ConvConfig(**payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
