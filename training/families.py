"""Every model family in one table: what a study's ``model`` names, and all that follows from it.

A family is ``plain`` or ``highway`` (the fully connected nets of Figure 1, at any depth asked
for) or one of the authors' conv presets (at the depth of its definition). Per family the
table says: its config type and how to build the reference net and a pack of K nets (with the
engine that trains the pack), its recipe and the hyperparameters the recipe fixes, which
hyperparameters its studies sample and from which ranges of the search space, how its studies
are named, and where the report shows it. Adding a family is one entry in :data:`FAMILIES`;
call sites ask the family, never compare its name.

Torch-free: the nets and engines are built by methods that import their modules when called,
so settings and refusals can use the table without importing torch.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hwsearch.models import KINDS, PRESETS, ConvConfig, FCConfig, preset
from hwsearch.models.presets import forward_flops
from hwsearch.options import ConfigError, did_you_mean

from .datasets import DATASETS
from .recipe import CAFFE_CIFAR, CAFFE_MNIST, SGD, Recipe

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .engines import Engine

ModelConfig = FCConfig | ConvConfig
PLAIN, HIGHWAY = "plain", "highway"
PARAMETER_COPIES = 4  # weights, gradients, momentum buffers, best weights
MAX_PACK = 4096  # trials trained as one pack, at most


class Run(Protocol):
    """What a family reads of a run's configuration (``config.TrainConfig``)."""

    @property
    def dataset(self) -> str: ...
    @property
    def depth(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def carry_gate(self) -> bool: ...
    @property
    def limit_train(self) -> int | None: ...
    @property
    def dtype(self) -> str: ...
    @property
    def eval_test(self) -> bool: ...
    @property
    def batch(self) -> int: ...


class TrialParams(Protocol):
    """What a family reads of a trial's hyperparameters (``config.Hyperparams``)."""

    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def lr_decay(self) -> float: ...
    @property
    def activation(self) -> str: ...
    @property
    def gate_bias(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...


@dataclass(frozen=True, kw_only=True)
class Family(abc.ABC):
    """One row of the table; :class:`FCFamily` and :class:`ConvFamily` are its two kinds."""

    name: str
    recipe: Recipe
    # hyperparameter -> the search-space range it is drawn from (SearchSpace's field)
    samples: Mapping[str, str]
    auto_pack: Mapping[str, int]  # trials per pack by default, on "cpu" and on "gpu"
    records_recipe: bool  # its studies record the recipe in their configuration
    in_figure1: bool  # the report compares it in Figure 1 and the claims (plain vs highway)
    in_table1: bool  # the report sets it beside the papers' Table 1
    eval_chunk: int = 4096  # examples per evaluation batch of one net (no gradients kept)

    @property
    def space_keys(self) -> tuple[str, ...]:
        """The part of the search space its studies record (a resume compares it)."""
        return tuple(dict.fromkeys(self.samples.values()))

    @abc.abstractmethod
    def fixed_depth(self, width: int) -> int | None:
        """The depth its definition fixes (at ``width``), or None when any depth is allowed."""

    @abc.abstractmethod
    def depths(self, asked: Sequence[int], own: int) -> tuple[int, ...]:
        """The depths a launch makes studies at: those ``asked``, or its ``own``."""

    def hyperparam_defaults(self) -> dict[str, Any]:
        """The values a trial takes for the hyperparameters it was not given."""
        return {}

    @abc.abstractmethod
    def model_config(self, config: Run, hp: TrialParams, in_features: int,
                     in_channels: int, num_classes: int) -> ModelConfig:
        """The net of one trial of ``config`` with ``hp``, on data of this shape."""

    @abc.abstractmethod
    def build(self, config: ModelConfig, generator: torch.Generator | None = None) -> nn.Module:
        """The reference net (one trial, an ``nn.Module``)."""

    @abc.abstractmethod
    def pack(self, config: Run, trials: Sequence[TrialParams], nets: Sequence[nn.Module],
             device: torch.device, dtype: torch.dtype) -> Engine:
        """The engine that trains ``nets`` (built for ``trials``) as one pack."""

    @abc.abstractmethod
    def study_name(self, prefix: str, dataset: str, depth: int, width: int) -> str:
        """The study of this family at that dataset, depth and width."""

    def legacy_study_name(self, prefix: str, dataset: str, depth: int, width: int) -> str:
        """What hwsearch 0.1 named that study; read when no study has the current name."""
        return self.study_name(prefix, dataset, depth, width)

    @property
    @abc.abstractmethod
    def default_width(self) -> int:
        """The width a study takes when it names none (0: fixed by the definition)."""

    @abc.abstractmethod
    def width_label(self, width: int) -> str:
        """The width as the report's summary shows it (``width`` 0: the default)."""

    def pack_bytes(self, config: Run, pack: int) -> int | None:
        """A lower bound on the bytes a pack of ``pack`` trials holds at once; None when the
        family is not estimated."""
        return None

    @abc.abstractmethod
    def trial_flops(self, config: Run) -> float:
        """Matmul FLOPs of one example's forward pass through one trial's net: what a trial
        of ``config`` costs beside another (a launch hands out the costliest packs first)."""


def _fc_samples(gated: bool) -> dict[str, str]:
    names = ["lr", "momentum", "lr_decay", "activation"] + (["gate_bias"] if gated else [])
    return {name: name for name in names}


@dataclass(frozen=True, kw_only=True)
class FCFamily(Family):
    """plain or highway: Figure 1's fully connected nets, trained by plain SGD at any depth."""

    saved_per_layer: int = 2  # tensors of a minibatch's width autograd keeps per layer, at least
    recipe: Recipe = SGD
    auto_pack: Mapping[str, int] = field(default_factory=lambda: {"cpu": 8, "gpu": MAX_PACK})
    records_recipe: bool = False  # their studies predate recipes: a resume compares the spec
    in_figure1: bool = True
    in_table1: bool = False

    @property
    def space_keys(self) -> tuple[str, ...]:
        # Every FC study records the whole FC space, the gate bias too (as hwsearch 0.1 did).
        return ("lr", "momentum", "lr_decay", "gate_bias", "activation")

    def fixed_depth(self, width: int) -> int | None:
        return None

    def depths(self, asked: Sequence[int], own: int) -> tuple[int, ...]:
        return tuple(asked)

    def model_config(self, config: Run, hp: TrialParams, in_features: int,
                     in_channels: int, num_classes: int) -> ModelConfig:
        return FCConfig(kind=self.name, depth=config.depth, width=config.width,
                        activation=hp.activation, gate_bias=hp.gate_bias,
                        in_features=in_features, num_classes=num_classes,
                        carry_gate=config.carry_gate)

    def build(self, config: ModelConfig, generator: torch.Generator | None = None) -> nn.Module:
        from hwsearch.models.fc import FCNet

        assert isinstance(config, FCConfig)
        return FCNet(config, generator)

    def pack(self, config: Run, trials: Sequence[TrialParams], nets: Sequence[nn.Module],
             device: torch.device, dtype: torch.dtype) -> Engine:
        from hwsearch.models.packed import PackedFCNet

        from .engines import PackedEngine

        if any(hp.weight_decay for hp in trials):
            raise ConfigError("packs of FC nets train plain SGD; weight decay must be 0")
        fc_config = nets[0].config
        assert isinstance(fc_config, FCConfig)
        packed = PackedFCNet.from_state_dicts(fc_config, [n.state_dict() for n in nets],
                                              [hp.activation for hp in trials])
        return PackedEngine(packed.to(device, dtype), [hp.lr for hp in trials],
                            [hp.momentum for hp in trials], [hp.lr_decay for hp in trials])

    def study_name(self, prefix: str, dataset: str, depth: int, width: int) -> str:
        return f"{prefix}{dataset}-{self.name}-d{depth}"

    @property
    def default_width(self) -> int:
        return KINDS[self.name].width

    def width_label(self, width: int) -> str:
        return str(width) if width else f"{self.default_width} (paper's)"

    def trial_flops(self, config: Run) -> float:
        info = DATASETS[config.dataset]
        w = config.width or self.default_width
        maps = (2 + int(config.carry_gate)) if KINDS[self.name].highway else 1
        return 2.0 * w * (info.features + (config.depth - 1) * maps * w + info.classes)

    def pack_bytes(self, config: Run, pack: int) -> int | None:
        """Per trial four copies of the parameters (weights, gradients, momentum, the best
        epoch's weights) and the activations autograd keeps for one minibatch; per pack the
        dataset, resident on the device. Only what certainly lives at once, so a refusal is
        never wrong; the evaluation pass, the allocator's slack and CUDA's context are left
        out, so a pack it lets through may still not fit."""
        info = DATASETS[config.dataset]
        n_train = min(info.train, config.limit_train or info.train)
        features, classes = info.features, info.classes
        item = 8 if config.dtype == "float64" else 4
        w = config.width or self.default_width
        carry = int(config.carry_gate)
        maps = 2 + carry if KINDS[self.name].highway else 1  # H, T (, C) or H alone
        params = features * w + w + (config.depth - 1) * maps * (w * w + w) + w * classes + classes
        saved = config.batch * (features + config.depth * w * (self.saved_per_layer + carry)
                                + classes)
        data = (n_train + (info.test if config.eval_test else 0)) * features * item
        return pack * item * (PARAMETER_COPIES * params + saved) + data


@dataclass(frozen=True, kw_only=True)
class ConvFamily(Family):
    """One of the authors' conv definitions, trained by its Caffe solver at its own depth."""

    samples: Mapping[str, str] = field(default_factory=lambda: {
        "lr": "conv_lr", "momentum": "conv_momentum", "weight_decay": "weight_decay",
        "gate_bias": "conv_gate_bias"})
    auto_pack: Mapping[str, int] = field(default_factory=lambda: {"cpu": 1, "gpu": 8})
    # Feature maps of 256 images stay in cache (width 16: 18K floats an image): MNIST then
    # evaluates in about two thirds of the time batches of 4096 take.
    eval_chunk: int = 256
    records_recipe: bool = True
    in_figure1: bool = False
    in_table1: bool = True

    def fixed_depth(self, width: int) -> int | None:
        return preset(self.name, width=width).depth

    def depths(self, asked: Sequence[int], own: int) -> tuple[int, ...]:
        return (own,)

    def hyperparam_defaults(self) -> dict[str, Any]:
        """The solver's rate, momentum and decay, ReLU, and the definition's gate bias."""
        return {"lr": self.recipe.lr, "momentum": self.recipe.momentum,
                "weight_decay": self.recipe.weight_decay, "activation": "relu",
                "gate_bias": PRESETS[self.name].gate_bias}

    def model_config(self, config: Run, hp: TrialParams, in_features: int,
                     in_channels: int, num_classes: int) -> ModelConfig:
        expected = PRESETS[self.name].in_channels
        if in_channels != expected:
            raise ConfigError(f"model {self.name!r} takes {expected}-channel images; "
                              f"dataset {config.dataset!r} has {in_channels}")
        try:
            return preset(self.name, width=config.width, num_classes=num_classes,
                          activation=hp.activation, gate_bias=hp.gate_bias,
                          carry_gate=config.carry_gate)
        except ValueError as e:
            raise ConfigError(f"model {self.name!r} on {config.dataset!r}: {e}") from None

    def build(self, config: ModelConfig, generator: torch.Generator | None = None) -> nn.Module:
        from hwsearch.models.conv import ConvHighwayNet

        assert isinstance(config, ConvConfig)
        return ConvHighwayNet(config, generator)

    def pack(self, config: Run, trials: Sequence[TrialParams], nets: Sequence[nn.Module],
             device: torch.device, dtype: torch.dtype) -> Engine:
        from hwsearch.models.packed_conv import PackedConvNet

        from .conv_engine import PackedConvEngine

        conv_config = nets[0].config
        assert isinstance(conv_config, ConvConfig)
        if len({hp.activation for hp in trials}) > 1:
            raise ConfigError("a pack of conv trials shares one activation; got "
                              f"{sorted({hp.activation for hp in trials})}")
        # The gate bias is each trial's own, but lives in its initial weights only.
        packed = PackedConvNet.from_state_dicts(conv_config, [n.state_dict() for n in nets])
        return PackedConvEngine(
            packed.to(device, dtype), self.recipe, [hp.lr for hp in trials],
            [hp.momentum for hp in trials], [hp.weight_decay for hp in trials],
            [hp.lr_decay for hp in trials],
        )

    def study_name(self, prefix: str, dataset: str, depth: int, width: int) -> str:
        """The preset's name says its depth, and its dataset when it is the one trained on:
        ``mnist-highway-10``, ``mnist-highway-10-w32``, ``fashion-mnist-mnist-highway-10``."""
        stem = self.name if self.name.startswith(f"{dataset}-") else f"{dataset}-{self.name}"
        return f"{prefix}{stem}" + (f"-w{width}" if width else "")

    def legacy_study_name(self, prefix: str, dataset: str, depth: int, width: int) -> str:
        """``mnist-mnist-highway-10-d10``, ``mnist-mnist-highway-10-w32-d10``."""
        return f"{prefix}{dataset}-{self.name}" + (f"-w{width}" if width else "") + f"-d{depth}"

    @property
    def default_width(self) -> int:
        return PRESETS[self.name].default_width

    def trial_flops(self, config: Run) -> float:
        return float(forward_flops(self.name, config.width))

    def width_label(self, width: int) -> str:
        return str(width) if width else "default"


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        FCFamily(name=HIGHWAY, samples=_fc_samples(gated=True), saved_per_layer=4),
        FCFamily(name=PLAIN, samples=_fc_samples(gated=False), saved_per_layer=2),
        ConvFamily(name="mnist-highway-10", recipe=CAFFE_MNIST),
        ConvFamily(name="cifar10-highway-19", recipe=CAFFE_CIFAR),
        ConvFamily(name="cifar100-highway-19", recipe=CAFFE_CIFAR),
    )
}
MODELS = tuple(FAMILIES)


def family(model: str) -> Family:
    """The family ``model`` names; a one-line :class:`ConfigError` for any other name."""
    try:
        return FAMILIES[model]
    except KeyError:
        raise ConfigError(f"unknown model {model!r}{did_you_mean(model, MODELS)}; allowed: "
                          f"{', '.join(MODELS)}") from None
