"""Data, the training loop and its two engines (single nn.Module, fused pack of K trials).

``config``, ``recipe`` and ``datasets`` import no torch; the rest do."""

from __future__ import annotations

from hwsearch.lazy import lazy_exports

# Each public name and the module that defines it. Names are imported when first used, so
# that settings and read commands can use the torch-free ones without importing torch.
_WHERE = {
    "DEVICES": "config",
    "DTYPES": "config",
    "MODELS": "config",
    "ConfigError": "config",
    "Hyperparams": "config",
    "TrainConfig": "config",
    "DATASETS": "datasets",
    "DataError": "datasets",
    "check_dataset": "datasets",
    "Dataset": "data",
    "load_dataset": "data",
    "read_idx": "data",
    "Engine": "engines",
    "PackedEngine": "engines",
    "SingleEngine": "engines",
    "EpochRecord": "loop",
    "TrialResult": "loop",
    "fit": "loop",
    "init_generator": "loop",
    "shuffle_generator": "loop",
    "RECIPES": "recipe",
    "Recipe": "recipe",
    "recipe_for": "recipe",
    "build_engine": "trainer",
    "build_model": "trainer",
    "load_data": "trainer",
    "resolve_device": "trainer",
    "train": "trainer",
}
__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
