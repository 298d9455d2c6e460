"""Data, the model families, the training loop and its engines (a single nn.Module, or a fused
pack of K trials).

This package's names are the torch-free ones (configuration, recipes, which datasets exist),
so that settings and refusals never import torch. The rest is imported from its module:
``training.data`` (:func:`load_dataset`), ``training.trainer`` (:func:`train`,
:func:`build_engine`, :func:`build_model`), ``training.loop`` (:func:`fit`, the records),
``training.engines``, ``training.conv_engine`` and ``training.compiled``.
"""

from __future__ import annotations

from .config import DEVICES, DTYPES, ConfigError, Hyperparams, TrainConfig
from .datasets import DATASETS, DataError, DatasetInfo, check_dataset
from .families import FAMILIES, HIGHWAY, MODELS, PLAIN, Family, family
from .recipe import RECIPES, Recipe

__all__ = [
    "DATASETS",
    "DEVICES",
    "DTYPES",
    "FAMILIES",
    "HIGHWAY",
    "MODELS",
    "PLAIN",
    "RECIPES",
    "ConfigError",
    "DataError",
    "DatasetInfo",
    "Family",
    "Hyperparams",
    "Recipe",
    "TrainConfig",
    "check_dataset",
    "family",
]
