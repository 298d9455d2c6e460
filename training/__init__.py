"""Data, the training loop and its two engines (single nn.Module, fused pack of K trials)."""

from .config import DEVICES, DTYPES, MODELS, ConfigError, Hyperparams, TrainConfig
from .data import DATASETS, DataError, Dataset, load_dataset, read_idx
from .engines import Engine, PackedEngine, SingleEngine
from .loop import EpochRecord, TrialResult, fit, init_generator, shuffle_generator
from .recipe import RECIPES, Recipe, recipe_for
from .trainer import build_engine, build_model, load_data, resolve_device, train

__all__ = [
    "DATASETS",
    "DEVICES",
    "DTYPES",
    "MODELS",
    "RECIPES",
    "ConfigError",
    "DataError",
    "Dataset",
    "Engine",
    "EpochRecord",
    "Hyperparams",
    "PackedEngine",
    "Recipe",
    "SingleEngine",
    "TrainConfig",
    "TrialResult",
    "build_engine",
    "build_model",
    "fit",
    "init_generator",
    "load_data",
    "load_dataset",
    "read_idx",
    "recipe_for",
    "resolve_device",
    "shuffle_generator",
    "train",
]
