"""How a trial's results are written to (and read back from) an Optuna study.

The layout, which the report, the CLI queries and external tools rely on:

* params: ``lr``, ``momentum``, ``decay_rate``, ``activation``, and ``gate_bias`` (highway only);
* intermediate values: step = epoch (1-based), value = that epoch's mean training cross-entropy;
* user attrs: ``history`` (list of per-epoch dicts: epoch, train_loss, train_accuracy,
  test_accuracy, lr, seconds), ``seed``, ``outcome`` (``completed`` | ``diverged`` | a failure
  reason), ``diverged_epoch``, ``ray_node_id``, ``ray_node_ip``, ``hostname``, ``pack_size``,
  ``launcher``;
* state: COMPLETE with value = lowest epoch training cross-entropy; a diverged run is PRUNED (it is
  a finished member of the random search, but has no trustworthy best value); a run lost to
  infrastructure is FAIL with ``outcome`` saying why, and is replaced;
* artifact ``weights.pt`` on COMPLETE trials: ``torch.save({"model_config": FCConfig or
  ConvConfig as dict, "model_class": "FCNet" | "ConvHighwayNet", "state_dict": ...})``.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from hwsearch.models import ConvConfig, ConvHighwayNet, FCConfig, FCNet
from hwsearch.storage import StudyStorage

WEIGHTS_FILE = "weights.pt"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def record_epoch(
    storage: optuna.storages.BaseStorage, trial_id: int, history: list[Mapping[str, Any]]
) -> None:
    """Store the newest epoch as an intermediate value and the whole history as a user attr."""
    last = history[-1]
    storage.set_trial_intermediate_value(trial_id, int(last["epoch"]), float(last["train_loss"]))
    storage.set_trial_user_attr(trial_id, "history", [dict(h) for h in history])


def serialize_weights(
    model_config: FCConfig | ConvConfig, state_dict: dict[str, torch.Tensor]
) -> bytes:
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


def upload_weights(store: StudyStorage, trial: FrozenTrial | optuna.Trial, payload: bytes) -> str:
    """Attach ``payload`` to ``trial`` as the ``weights.pt`` artifact; returns its id."""
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


def history(trial: FrozenTrial) -> list[dict[str, Any]]:
    return list(trial.user_attrs.get("history", []))


def is_diverged(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get("outcome") == "diverged"


def objective_value(best_train_loss: float) -> float | None:
    return best_train_loss if math.isfinite(best_train_loss) else None
