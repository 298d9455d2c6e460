"""The search service: settings, studies, the pack planner, the Tune searcher and trainable,
the launcher, the queries and the CLI."""

from .sampler import SeededRandomSampler
from .settings import LaunchSettings, build_settings, load_toml
from .space import Range, SearchSpace
from .studies import check_study, open_study, study_name

__all__ = [
    "LaunchSettings",
    "Range",
    "SearchSpace",
    "SeededRandomSampler",
    "build_settings",
    "check_study",
    "load_toml",
    "open_study",
    "study_name",
]
