"""Run trials: build nets from seeds, pick the engine, hand them to the loop.

One entry point serves ``hwsearch train`` (one trial) and the search (a pack of K trials of one
configuration); the engine is the only thing that differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hwsearch.models import (
    ConvConfig,
    ConvHighwayNet,
    FCConfig,
    FCNet,
    PackedConvNet,
    PackedFCNet,
    count_parameters,
)

from .compiled import compile_engine
from .config import ConfigError, Hyperparams, TrainConfig
from .conv_engine import PackedConvEngine
from .data import Dataset, load_dataset
from .engines import CONV_EVAL_CHUNK, EVAL_CHUNK, Engine, PackedEngine, SingleEngine
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


def build_model(config: TrainConfig, hp: Hyperparams, data: Dataset) -> FCNet | ConvHighwayNet:
    model_config = config.model_config(hp, data.in_features, data.in_channels, data.num_classes)
    gen = init_generator(hp.seed)
    if isinstance(model_config, FCConfig):
        return FCNet(model_config, gen)
    return ConvHighwayNet(model_config, gen)


def build_engine(
    config: TrainConfig, trials: Sequence[Hyperparams], data: Dataset, packed: bool
) -> tuple[Engine, int]:
    """The engine for ``trials`` and the parameter count of one of its nets."""
    device, dtype = data.y_train.device, data.x_train.dtype
    nets = [build_model(config, hp, data) for hp in trials]
    params = count_parameters(nets[0])
    if not packed:
        if len(trials) != 1:
            raise ValueError("the single engine trains one trial; use packed=True for more")
        hp = trials[0]
        engine = SingleEngine(nets[0].to(device, dtype), hp.lr, hp.momentum, hp.lr_decay,
                              recipe=config.recipe, weight_decay=hp.weight_decay,
                              eval_chunk=CONV_EVAL_CHUNK if config.is_conv else EVAL_CHUNK)
        return engine, params
    if config.is_conv:
        return _conv_pack(config, trials, nets, device, dtype), params
    if any(hp.weight_decay for hp in trials):
        raise ConfigError("packs of FC nets train plain SGD; weight decay must be 0")
    fc_config = nets[0].config
    assert isinstance(fc_config, FCConfig)
    pack = PackedFCNet.from_state_dicts(fc_config, [n.state_dict() for n in nets],
                                        [hp.activation for hp in trials])
    engine = PackedEngine(
        pack.to(device, dtype),
        [hp.lr for hp in trials],
        [hp.momentum for hp in trials],
        [hp.lr_decay for hp in trials],
    )
    return engine, params


def _conv_pack(
    config: TrainConfig, trials: Sequence[Hyperparams], nets: Sequence[nn.Module],
    device: torch.device, dtype: torch.dtype,
) -> PackedConvEngine:
    conv_config = nets[0].config
    assert isinstance(conv_config, ConvConfig)
    if len({hp.activation for hp in trials}) > 1:
        raise ConfigError("a pack of conv trials shares one activation; got "
                          f"{sorted({hp.activation for hp in trials})}")
    # The gate bias is each trial's own, but lives in its initial weights only.
    pack = PackedConvNet.from_state_dicts(conv_config, [n.state_dict() for n in nets])
    return PackedConvEngine(
        pack.to(device, dtype), config.recipe, [hp.lr for hp in trials],
        [hp.momentum for hp in trials], [hp.weight_decay for hp in trials],
        [hp.lr_decay for hp in trials],
    )


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
        on_epoch=(lambda e, rs: on_epoch(e, given_order(rs))) if on_epoch else None,
    )
    return given_order(results), params
