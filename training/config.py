"""What a training run is: the architecture and protocol shared by a pack, and each trial's own
hyperparameters. Each setting is defined once here (``hwsearch.options``); ``hwsearch train``,
``hwsearch launch`` and the config file derive their flags and keys from these fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from hwsearch.models import MAX_DEPTH, MAX_WIDTH, check_activation, check_depth
from hwsearch.options import ConfigError, number, option, validate

from .datasets import DATASETS
from .families import FAMILIES, HIGHWAY, MODELS, ModelConfig, family
from .recipe import Recipe

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 16
MAX_SEED = 2**31 - 1

__all__ = ["DEVICES", "DTYPES", "MODELS", "ConfigError", "Hyperparams", "TrainConfig"]


def _models_check(check: Any) -> Any:
    """A models-layer check (raises ValueError) as an option check (returns the message)."""

    def run(name: str, value: Any) -> str | None:
        try:
            check(value)
        except ValueError as e:
            return str(e)
        return None

    return run


_activation = _models_check(check_activation)
_depth = _models_check(check_depth)


@dataclass(frozen=True)
class Hyperparams:
    """One trial's sampled values; the defaults are those of an FC trial that trains well
    (docs/cli.md has a 50-layer highway net's run with them)."""

    lr: float = option(0.1, "initial learning rate", check=number(above=0, high=1e6))
    momentum: float = option(0.9, "SGD momentum, in [0, 1)", check=number(0, 0.999999))
    lr_decay: float = option(
        0.7, "lr at the end of the run ÷ lr at the start (exponential per step)",
        check=number(above=0, high=1),
    )
    activation: str = option("tanh", "relu or tanh", check=_activation)
    gate_bias: float = option(
        -3.0, "initial transform-gate bias (highway)", check=number(-100, 100)
    )
    seed: int = option(0, "seeds the weights and the data order", check=number(0, MAX_SEED))
    weight_decay: float = option(
        0.0, "L2 weight decay (the conv recipe's: 0.001)", check=number(0, 1)
    )

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def for_model(cls, model: str, **given: Any) -> Hyperparams:
        """A trial's hyperparameters: those ``given``, the rest from the model's recipe (for a
        conv preset: its solver's rate, momentum and decay, ReLU, its definition's gate
        bias; for the FC nets: the defaults above)."""
        return cls(**{**family(model).hyperparam_defaults(), **given})

    def to_dict(self) -> dict[str, float | str | int]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """Everything trials of one pack share: data, architecture, protocol, device.

    Fields marked ``in_spec`` make up a study's configuration (:meth:`spec`): two runs that
    differ in one of them are different experiments. The others say where and how to run.
    """

    dataset: str = option("mnist", "dataset", choices=tuple(DATASETS), in_spec=True)
    data_dir: str | None = option(
        None, "directory with the dataset files (MNIST: IDX files)", metavar="DIR"
    )
    download: bool = option(False, "fetch the dataset with torchvision (needs internet)")
    model: str = option(HIGHWAY, "highway, plain or a conv preset", choices=MODELS,
                        in_spec=True)
    depth: int = option(10, f"layers, 1..{MAX_DEPTH} (fully connected nets)", check=_depth,
                        in_spec=True)
    width: int = option(
        0, "units per layer; 0: the paper's (50 highway, 71 plain)",
        check=number(0, MAX_WIDTH), in_spec=True,
    )
    epochs: int = option(10, "training epochs", check=number(1, MAX_EPOCHS), in_spec=True)
    batch_size: int = option(
        0, "minibatch size; 0: the recipe's (128 FC, 100 conv)", check=number(0, MAX_BATCH),
        in_spec=True,
    )
    staircase: bool = option(False, "decay the lr once per epoch instead of every step",
                             in_spec=True)
    limit_train: int | None = option(
        None, "train on the first N examples only", check=number(1, 10**9), in_spec=True,
        metavar="N",
    )
    carry_gate: bool = option(False, "independent carry gate C(x) (paper's eq. 2)",
                              in_spec=True)
    eval_test: bool = option(True, "measure the test-set accuracy of the stored model")
    test_every_epoch: bool = option(
        False, "measure the test-set accuracy after every epoch, a learning curve (default: "
        "once, at the end, for the best epoch's weights: the stored model's, what the report "
        "and the queries show)",
    )
    device: str = option("auto", "auto, cpu or cuda", choices=DEVICES)
    dtype: str = option("float32", "float32 or float64", choices=DTYPES)

    def __post_init__(self) -> None:
        if self.model in FAMILIES:  # an unknown one is refused by validate, naming the choices
            try:
                fixed = family(self.model).fixed_depth(self.width)
            except ValueError as e:
                raise ConfigError(str(e)) from None
            if fixed is not None:  # a conv preset fixes its own depth
                object.__setattr__(self, "depth", fixed)
        validate(self)
        if self.test_every_epoch and not self.eval_test:
            raise ConfigError("`test_every_epoch` measures the test set, which `eval_test` "
                              "skips: give one of them")

    @property
    def recipe(self) -> Recipe:
        return family(self.model).recipe

    @property
    def batch(self) -> int:
        """The minibatch size in force: the one given, else the recipe's."""
        return self.batch_size or self.recipe.batch_size

    def spec(self) -> dict[str, Any]:
        """The study's configuration: the fields that define the experiment (the batch size
        in force, and for a conv preset its recipe)."""
        spec = {
            f.name: getattr(self, f.name) for f in fields(self) if f.metadata["option"].in_spec
        }
        spec["batch_size"] = self.batch
        if family(self.model).records_recipe:
            spec["recipe"] = self.recipe.name
        return spec

    def model_config(
        self, hp: Hyperparams, in_features: int, in_channels: int, num_classes: int
    ) -> ModelConfig:
        return family(self.model).model_config(self, hp, in_features, in_channels, num_classes)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

