"""Hand-built trials and study records, for testing the data functions on known values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from hwsearch.report.studies import StudyRecord
from hwsearch.storage import records as rec
from hwsearch.storage.records import epoch_key

DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-6, 1.0, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
    "lr_decay": FloatDistribution(1e-3, 1.0, log=True),
    "activation": CategoricalDistribution(["relu", "tanh"]),
    "gate_bias": FloatDistribution(-10.0, -1.0),
    "weight_decay": FloatDistribution(1e-4, 1e-2, log=True),  # conv studies
}


def trial(
    number: int, losses: Sequence[float] = (), state: TrialState = TrialState.COMPLETE,
    params: dict[str, Any] | None = None, with_history: bool = True, model: str = "highway",
) -> FrozenTrial:
    """A finished trial whose per-epoch training CE is ``losses`` (value: their minimum)."""
    params = params or {"lr": 10 ** -(number % 5 + 1), "momentum": 0.1 * (number % 9),
                        "lr_decay": 0.8 + 0.02 * (number % 10),
                        "activation": ("relu", "tanh")[number % 2], "gate_bias": -1.0 - number % 9}
    if model == "plain":
        params.pop("gate_bias", None)
    history = [{"epoch": i + 1, "train_loss": v, "train_accuracy": 0.5, "test_accuracy": 0.9,
                "lr": 0.1, "seconds": 1.0} for i, v in enumerate(losses)]
    now = dt.datetime(2026, 1, 1)
    complete = state == TrialState.COMPLETE
    attrs: dict[str, Any] = {epoch_key(h["epoch"]): h for h in history} if with_history else {}
    attrs[rec.OUTCOME] = {TrialState.COMPLETE: rec.COMPLETED, TrialState.PRUNED: rec.DIVERGED,
                          TrialState.FAIL: "infrastructure failure: the worker was lost"
                          }.get(state, "")
    if state == TrialState.PRUNED:
        attrs[rec.DIVERGED_EPOCH] = len(losses) + 1
    return FrozenTrial(
        number=number, state=state, value=min(losses) if complete and losses else None,
        values=None, datetime_start=now, datetime_complete=now, params=params,
        distributions={k: DISTRIBUTIONS[k] for k in params},
        user_attrs=attrs,
        system_attrs={}, intermediate_values={i + 1: v for i, v in enumerate(losses)},
        trial_id=number,
    )


def record(
    model: str, depth: int, trials: Sequence[FrozenTrial], name: str = "", **protocol: Any
) -> StudyRecord:
    """A study as the service records it; ``protocol`` overrides spec fields (e.g. epochs)."""
    name = name or f"mnist-{model}-d{depth}"
    spec = {"dataset": "mnist", "model": model, "depth": depth, "width": 0, "epochs": 3,
            "batch_size": 128, "limit_train": 1000, "staircase": False, "carry_gate": False,
            **rec.PROTOCOL, **protocol}
    return StudyRecord(name, "mnist", model, depth, spec, list(trials))
