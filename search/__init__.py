"""The search service: settings, studies, the pack planner, the Tune searcher and trainable,
and the launcher.

This package's names import neither torch nor Ray (a refused launch must not pay for them);
``search.launcher``, ``search.searcher`` and ``search.trainable`` do, and are imported by name.
"""

from __future__ import annotations

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
