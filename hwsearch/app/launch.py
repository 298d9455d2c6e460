"""The launch: run (or resume) the random search until every study has its target of finished
trials. Checked at the boundary first, in this order, before anything is created: the settings,
the memory a pack needs (a local launch), the data (a local launch: a cluster's workers have
their own), the database URL, and that the cluster at ``ray_address`` answers (within
``ray_timeout``). Then the search runs under Ctrl-C and SIGTERM handling, its
progress shown on ``out``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from hwsearch.search.memory import check_fits, local_device
from hwsearch.search.packing import pick_pack_size
from hwsearch.search.reach import check_cluster
from hwsearch.search.settings import LaunchSettings, build_settings, load_toml
from hwsearch.storage.keep import check_artifact_dir
from hwsearch.training.datasets import check_dataset

from .progress import Progress
from .quiet import quiet_optuna
from .signals import interruptible, take_back
from .storage_url import resolve_storage

if TYPE_CHECKING:
    from hwsearch.search.launcher import LaunchResult


def launch_settings(values: Mapping[str, Any], config: str | None = None) -> LaunchSettings:
    """The settings of a launch: ``values`` (keyword or flag names, dashes or underscores)
    over the TOML file ``config``; unknown keys and bad values are one-line errors."""
    merged: dict[str, Any] = load_toml(config) if config else {}
    merged.update({k: v for k, v in values.items() if v is not None})
    return build_settings(merged)


def launch(
    settings: LaunchSettings | None = None, *, config: str | None = None, out: TextIO = sys.stderr,
    **values: Any,
) -> LaunchResult:
    """Run (or resume) the search of ``settings`` (else of ``values`` over the TOML file
    ``config``); returns each study's finished trials against its target."""
    settings = settings if settings is not None else launch_settings(values, config)
    if settings.artifacts:  # absolute: every process and the studies' record name one place
        settings = replace(settings, artifacts=check_artifact_dir(settings.artifacts))
    if not settings.ray_address:  # a cluster's workers are not this machine
        pack = min(pick_pack_size(settings), settings.trials)  # no pack exceeds a study
        check_fits(settings.configs(), pack, local_device(settings.gpus_per_trial))
        train = settings.train
        check_dataset(train.dataset, train.data_dir, train.download)
    url = resolve_storage(settings.storage, settings.storage_file)
    check_cluster(settings.ray_address, settings.ray_timeout)
    from hwsearch.search.launcher import launch_search  # the search: the input is good

    quiet_optuna()
    with interruptible():
        return launch_search(settings, url, Progress(out=out, every=settings.progress_every),
                             after_ray_start=take_back)
