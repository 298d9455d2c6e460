"""Run trials: build nets from seeds, pick the engine, hand them to the loop.

One entry point serves ``hwsearch train`` (one trial) and the search (a pack of K trials of one
configuration); the engine is the only thing that differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hwsearch.models.fc import count_parameters

from .compiled import compile_engine
from .config import ConfigError, Hyperparams, TrainConfig
from .data import Dataset, load_dataset
from .engines import Engine, PackedEngine, SingleEngine
from .families import family
from .loop import EpochCallback, TrialResult, fit, init_generator


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' requested but no CUDA device is available; use cpu or auto"
        )
    return torch.device(name)


def load_data(config: TrainConfig, device: torch.device | None = None) -> Dataset:
    data = load_dataset(config.dataset, config.data_dir, config.download)
    data = data.limit_train(config.limit_train)
    return data.to(device or resolve_device(config.device), getattr(torch, config.dtype))


def build_model(config: TrainConfig, hp: Hyperparams, data: Dataset) -> nn.Module:
    """The reference net of one trial, its weights drawn from the trial's seed."""
    model_config = config.model_config(hp, data.in_features, data.in_channels, data.num_classes)
    return family(config.model).build(model_config, init_generator(hp.seed))


def build_engine(
    config: TrainConfig, trials: Sequence[Hyperparams], data: Dataset, packed: bool
) -> tuple[Engine, int]:
    """The engine for ``trials`` and the parameter count of one of its nets."""
    device, dtype = data.y_train.device, data.x_train.dtype
    nets = [build_model(config, hp, data) for hp in trials]
    params = count_parameters(nets[0])
    if packed:
        return family(config.model).pack(config, trials, nets, device, dtype), params
    if len(trials) != 1:
        raise ValueError("the single engine trains one trial; use packed=True for more")
    hp = trials[0]
    engine = SingleEngine(nets[0].to(device, dtype), hp.lr, hp.momentum, hp.lr_decay,
                          recipe=config.recipe, weight_decay=hp.weight_decay,
                          eval_chunk=family(config.model).eval_chunk)
    return engine, params


def train(
    config: TrainConfig,
    trials: Sequence[Hyperparams],
    data: Dataset | None = None,
    *,
    packed: bool | None = None,
    on_epoch: EpochCallback | None = None,
) -> tuple[list[TrialResult], int]:
    """Train ``trials`` (one, or a pack); returns their results, in their order, and the size
    of one net.

    ``packed=None`` packs whenever there is more than one trial. A pack trains its trials
    grouped by activation (each activation is then one kernel per layer); results and
    ``on_epoch`` see them in the order given.
    """
    if not trials:
        return [], 0
    data = data if data is not None else load_data(config)
    packed = len(trials) > 1 if packed is None else packed
    order = sorted(range(len(trials)), key=lambda i: trials[i].activation)
    trials = [trials[i] for i in order]
    back = sorted(range(len(order)), key=lambda j: order[j])  # engine index of each given trial

    def given_order(results: Sequence[TrialResult]) -> list[TrialResult]:
        return [results[j] for j in back]

    engine, params = build_engine(config, trials, data, packed)
    if isinstance(engine, PackedEngine):
        # On a GPU the step is captured once as a CUDA graph (a pack of 50-wide nets is bound by
        # kernel launches); on a CPU this is the eager engine itself.
        engine = compile_engine(engine, "auto")
    results = fit(
        engine,
        data,
        [hp.seed for hp in trials],
        epochs=config.epochs,
        batch_size=config.batch,
        staircase=config.staircase,
        eval_test=config.eval_test,
        test_every_epoch=config.test_every_epoch,
        on_epoch=(lambda e, rs: on_epoch(e, given_order(rs))) if on_epoch else None,
    )
    return given_order(results), params
