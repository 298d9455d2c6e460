"""What the launcher and a worker tell each other, as typed messages.

The launcher sends a :class:`PackConfig` as the Tune trial's config; the worker answers through
``tune.report`` with an :class:`EpochReport` per epoch, then one :class:`FinalReport`, or an
:class:`ErrorReport` before it fails. Tune carries plain dicts, so each message converts to
one (``to_result``) and back (:func:`parse_result`); nothing else reads those dicts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

KIND = "hwsearch_message"
BODY = "hwsearch_body"


@dataclass(frozen=True)
class PackConfig:
    """A pack of trials of one study: their numbers, hyperparameters and shared protocol."""

    study: str
    numbers: list[int]
    params: list[dict[str, Any]]  # Hyperparams fields, one dict per trial
    train: dict[str, Any]  # TrainConfig fields

    def to_config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PackConfig:
        return cls(config["study"], list(config["numbers"]), list(config["params"]),
                   dict(config["train"]))

    def weights_key(self, number: int) -> str:
        return f"{self.study}/{number}"


@dataclass(frozen=True)
class Node:
    """Where a pack ran."""

    ray_node_id: str = ""
    ray_node_ip: str = ""
    hostname: str = ""


@dataclass(frozen=True)
class TrialEpoch:
    number: int
    record: dict[str, Any] | None  # this epoch's record; None once the trial has stopped
    diverged_epoch: int | None


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    trials: list[TrialEpoch]
    node: Node = field(default_factory=Node)
    data_seconds: float = 0.0  # the worker's data loading (first epoch only)
    seconds: float = 0.0  # the epoch, evaluation included (the whole pack's)
    eval_seconds: float = 0.0


@dataclass(frozen=True)
class TrialFinal:
    number: int
    diverged_epoch: int | None
    best_train_loss: float
    has_weights: bool
    test_accuracy: float | None = None  # of the best epoch's weights (the stored model)


@dataclass(frozen=True)
class FinalReport:
    trials: list[TrialFinal]
    params_per_net: int
    node: Node = field(default_factory=Node)
    eval_seconds: float = 0.0  # the test set's evaluation at the end (the whole pack's)


@dataclass(frozen=True)
class ErrorReport:
    """Why the pack failed, in one line, sent before the exception propagates."""

    message: str


Message = EpochReport | FinalReport | ErrorReport
_KINDS = {"epoch": EpochReport, "final": FinalReport, "error": ErrorReport}


def to_result(message: Message) -> dict[str, Any]:
    """As a Tune result. The body travels as JSON text: Tune flattens nested dicts in some
    result paths (``body/epoch``), and a string reaches the searcher as it was sent."""
    kind = next(k for k, cls in _KINDS.items() if isinstance(message, cls))
    return {KIND: kind, BODY: json.dumps(asdict(message))}


def parse_result(result: dict[str, Any]) -> Message | None:
    """The message in a Tune result, or None for a result that carries none."""
    kind = result.get(KIND)
    if kind not in _KINDS or not isinstance(result.get(BODY), str):
        return None
    body = json.loads(result[BODY])
    if kind == "error":
        return ErrorReport(str(body["message"]))
    if kind == "epoch":
        return EpochReport(
            int(body["epoch"]),
            [TrialEpoch(**t) for t in body["trials"]],
            Node(**body["node"]),
            float(body.get("data_seconds", 0.0)),
            float(body.get("seconds", 0.0)),
            float(body.get("eval_seconds", 0.0)),
        )
    if kind == "final":
        return FinalReport(
            [TrialFinal(**t) for t in body["trials"]],
            int(body["params_per_net"]),
            Node(**body["node"]),
            float(body.get("eval_seconds", 0.0)),
        )
    return None
