"""A trained net's weights as bytes: the payload that the storage keeps as a trial's
``weights.pt`` (``storage/weights.py`` reads it back).

``torch.save({"model_class": "FCNet" | "ConvHighwayNet", "model_config": the model config as a
dict, "state_dict": ...})``. It lives below the storage so that a search worker, which writes
payloads but never sees the database, does not import the database stack (SQLAlchemy, Optuna:
about 0.2 s of every worker's start on two cores).
"""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from hwsearch.models import ConvConfig, FCConfig

# The class each kind of model config is stored as ("model_class" in the payload).
CLASS_OF_CONFIG = {"FCConfig": "FCNet", "ConvConfig": "ConvHighwayNet"}


def serialize_weights(
    model_config: FCConfig | ConvConfig, state_dict: dict[str, torch.Tensor]
) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(
        {
            "model_class": CLASS_OF_CONFIG[type(model_config).__name__],
            "model_config": asdict(model_config),
            "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        },
        buf,
    )
    return buf.getvalue()
