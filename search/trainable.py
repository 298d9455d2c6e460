"""The Ray Tune trainable: one Tune trial trains a pack of Optuna trials of one configuration.

It never sees the database: parameters come in the config (:class:`PackConfig`), per-epoch
records go out through ``tune.report`` (:class:`EpochReport`), final weights through the
launcher's weight sink (``search/sink.py``). So the storage URL (and its password) never
reaches a worker, Tune's experiment directory or a checkpoint.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import ray
from ray import tune

from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.payload import serialize_weights

from .messages import (
    EpochReport,
    ErrorReport,
    FinalReport,
    Node,
    PackConfig,
    TrialEpoch,
    TrialFinal,
    to_result,
)

if TYPE_CHECKING:
    from hwsearch.training.loop import TrialResult


def _node() -> Node:
    ctx = ray.get_runtime_context()
    node_id = ctx.get_node_id()
    ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), "")
    return Node(node_id, ip, socket.gethostname())


def _epoch_report(
    epoch: int, results: list[TrialResult], numbers: list[int], node: Node, data_seconds: float
) -> EpochReport:
    recorded = [r.epochs[-1] for r in results if r.epochs and r.epochs[-1].epoch == epoch]
    trials = [
        TrialEpoch(
            number,
            asdict(r.epochs[-1]) if r.epochs and r.epochs[-1].epoch == epoch else None,
            r.diverged_epoch,
        )
        for number, r in zip(numbers, results, strict=True)
    ]
    return EpochReport(epoch, trials, node, data_seconds if epoch == 1 else 0.0,
                       recorded[0].seconds if recorded else 0.0,
                       recorded[0].eval_seconds if recorded else 0.0)


def train_pack(config: dict[str, Any], sink: Any = None) -> None:
    """Tune function trainable over a :class:`PackConfig`.

    An exception is reported (type and message) before it propagates, so the launcher can say
    why the pack's trials failed; a killed worker reports nothing and is called a lost worker.
    """
    try:
        _train_pack(PackConfig.from_config(config), sink)
    except Exception as e:
        tune.report(to_result(ErrorReport(f"{type(e).__name__}: {e}".splitlines()[0][:500])))
        raise


def _train_pack(pack: PackConfig, sink: Any) -> None:
    # Imported here, in the worker: the launcher, which only hands out packs, never pays for
    # importing torch (seconds, before Ray could start).
    import torch

    from hwsearch.training.trainer import load_data, train

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    train_config = TrainConfig(**pack.train)
    hps = [Hyperparams.for_model(train_config.model, **p) for p in pack.params]
    start = time.perf_counter()
    data = load_data(train_config)
    data_seconds = time.perf_counter() - start
    node = _node()

    def on_epoch(epoch: int, results: list[TrialResult]) -> None:
        report = _epoch_report(epoch, results, pack.numbers, node, data_seconds)
        tune.report(to_result(report))

    results, params = train(train_config, hps, data, on_epoch=on_epoch)
    final = []
    for number, hp, r in zip(pack.numbers, hps, results, strict=True):
        if r.state_dict is not None and sink is not None:
            model_config = train_config.model_config(
                hp, data.in_features, data.in_channels, data.num_classes
            )
            blob = serialize_weights(model_config, r.state_dict)
            ray.get(sink.put.remote(pack.weights_key(number), blob))
        final.append(TrialFinal(number, r.diverged_epoch, r.best_train_loss,
                                r.state_dict is not None, r.test_accuracy))
    test_seconds = results[0].test_seconds if results else 0.0
    tune.report(to_result(FinalReport(final, params, node, test_seconds)))
