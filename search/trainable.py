"""The Ray Tune trainable: one Tune trial trains a pack of Optuna trials of one configuration.

It never sees the database: parameters come in the config, per-epoch metrics go out through
``tune.report``, final weights through a :class:`WeightSink` actor owned by the launcher.
So the storage URL (and its password) never reaches a worker, Tune's experiment directory
or a checkpoint.
"""

from __future__ import annotations

import socket
from dataclasses import asdict
from typing import Any

import ray
import torch
from ray import tune

from hwsearch.training import Hyperparams, TrainConfig, TrialResult, load_data, train

from .recording import serialize_weights


@ray.remote(num_cpus=0)
class WeightSink:
    """Holds trained weights from workers until the launcher stores them."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, blob: bytes) -> None:
        self._blobs[key] = blob

    def pop(self, key: str) -> bytes | None:
        return self._blobs.pop(key, None)


def _node() -> dict[str, str]:
    ctx = ray.get_runtime_context()
    node_id = ctx.get_node_id()
    ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), "")
    return {"ray_node_id": node_id, "ray_node_ip": ip, "hostname": socket.gethostname()}


def _epoch_report(epoch: int, results: list[TrialResult], numbers: list[int]) -> dict[str, Any]:
    trials = []
    for number, r in zip(numbers, results, strict=True):
        entry: dict[str, Any] = {"number": number, "diverged_epoch": r.diverged_epoch}
        if r.epochs and r.epochs[-1].epoch == epoch:
            entry["record"] = asdict(r.epochs[-1])
        trials.append(entry)
    return {"epoch": epoch, "trials": trials}


def train_pack(config: dict[str, Any], sink: Any = None) -> None:
    """Tune function trainable. ``config``: study, numbers, params (one dict per trial), train.

    An exception is reported (type and message) before it propagates, so the launcher can say
    why the pack's trials failed; a killed worker reports nothing and is called a lost worker.
    """
    try:
        _train_pack(config, sink)
    except Exception as e:
        tune.report({"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]})
        raise


def _train_pack(config: dict[str, Any], sink: Any) -> None:
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    train_config = TrainConfig(**config["train"])
    numbers: list[int] = list(config["numbers"])
    hps = [Hyperparams(**p) for p in config["params"]]
    data = load_data(train_config)
    node = _node()

    def on_epoch(epoch: int, results: list[TrialResult]) -> None:
        tune.report({**_epoch_report(epoch, results, numbers), **node})

    results, params = train(train_config, hps, data, on_epoch=on_epoch)
    final = []
    for number, hp, r in zip(numbers, hps, results, strict=True):
        if r.state_dict is not None and sink is not None:
            model_config = train_config.model_config(
                hp, data.in_features, data.in_channels, data.num_classes
            )
            key = f"{config['study']}/{number}"
            ray.get(sink.put.remote(key, serialize_weights(model_config, r.state_dict)))
        final.append(
            {
                "number": number,
                "diverged_epoch": r.diverged_epoch,
                "best_train_loss": r.best_train_loss,
                "weights": r.state_dict is not None,
            }
        )
    tune.report({"done": True, "final": final, "params_per_net": params, **node})
