"""The search service: studies, the Tune searcher and trainable, the launcher, the CLI."""

from .recording import load_trial_model, record_epoch, serialize_weights, upload_weights
from .sampler import SeededRandomSampler
from .settings import LaunchSettings, StudySpec, build_settings, load_toml
from .space import Range, SearchSpace
from .studies import Counts, counts, open_study

__all__ = [
    "Counts",
    "LaunchSettings",
    "Range",
    "SearchSpace",
    "SeededRandomSampler",
    "StudySpec",
    "build_settings",
    "counts",
    "load_toml",
    "load_trial_model",
    "open_study",
    "record_epoch",
    "serialize_weights",
    "upload_weights",
]
