"""The search service: settings, studies, the pack planner, the Tune searcher and trainable,
the launcher, the queries and the CLI.

Names are imported on first use (PEP 562): ``hwsearch.search.cli`` is imported by every
command, and the read commands must not pay for torch, which the settings import.
"""

from __future__ import annotations

from hwsearch.lazy import lazy_exports

_WHERE = {
    "SeededRandomSampler": "sampler",
    "LaunchSettings": "settings",
    "build_settings": "settings",
    "load_toml": "settings",
    "Range": "space",
    "SearchSpace": "space",
    "check_study": "studies",
    "open_study": "studies",
    "study_name": "studies",
}

__all__ = sorted(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
