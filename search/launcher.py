"""``hwsearch launch``: open the studies, start (or join) Ray, let Tune run packs until every
study has exactly its target of finished trials."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import optuna

from hwsearch.storage import open_storage, resolve_url
from hwsearch.training import load_dataset

from .errors import LaunchError
from .heartbeat import Heartbeat
from .progress import Progress, StudyProgress
from .ray_setup import start_ray
from .searcher import PackSearcher, StudyPlan
from .settings import PACK_AUTO, LaunchSettings
from .studies import counts, open_study

if TYPE_CHECKING:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

log = logging.getLogger(__name__)

# From benchmarks/throughput.py: on 2 CPU cores packs of 8 already give 3× a conventional loop
# (40 adds little); on an H200 throughput still doubles from K=40 to K=160, so on a GPU a pack
# takes every trial of a study's activation it can. A pack never exceeds what a study needs.
AUTO_PACK = {"cpu": 8, "gpu": 64}


@dataclass(frozen=True)
class LaunchResult:
    studies: dict[str, tuple[int, int]]  # name -> (finished, target)
    storage: str


def quiet_libraries() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # We run trials through ask/tell and beat their hearts ourselves (search/heartbeat.py).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    # Tune's result files are off (the database keeps the results), so its analysis step would
    # warn about each trial's missing result.json.
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)


def pick_pack_size(settings: LaunchSettings) -> int:
    if settings.pack != PACK_AUTO:
        return settings.pack
    if any(m not in ("plain", "highway") for m in settings.models):
        return 1  # convolutional presets train one trial at a time
    size = AUTO_PACK["gpu" if settings.gpus_per_trial > 0 else "cpu"]
    return max(1, min(size, settings.trials))


def cluster_slots(settings: LaunchSettings) -> int:
    """How many packs the cluster can run at once. Tune lets a custom searcher keep only one
    trial pending unless told this, which leaves a second node idle while the first starts."""
    import ray

    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / settings.cpus_per_trial
    if settings.gpus_per_trial > 0:
        slots = min(slots, resources.get("GPU", 0.0) / settings.gpus_per_trial)
    return max(1, int(slots + 1e-9))


def on_this_node() -> NodeAffinitySchedulingStrategy:
    """A scheduling strategy that pins an actor to the driver's node. The weight sink must live
    as long as the launch: Ray may place a zero-CPU actor on any node, and on a worker node that
    dies mid-search every later pack would fail to hand over its weights (seen in the compose
    stack when a worker container was killed)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)


def launch(settings: LaunchSettings, out: TextIO = sys.stderr) -> LaunchResult:
    quiet_libraries()
    from ray import tune

    from .trainable import WeightSink, train_pack

    url = resolve_url(settings.storage)
    store = open_storage(url, heartbeat_interval=settings.heartbeat)
    plans: dict[str, StudyPlan] = {}
    for spec in settings.study_specs():
        name = spec.study_name(settings.study_prefix)
        study = open_study(store.optuna, name, spec, settings.seed, settings.space)
        # Absolute: Tune runs each trial in a directory of its own.
        data_dir = os.path.abspath(settings.data_dir) if settings.data_dir else None
        train = spec.train_config(data_dir, settings.download, settings.device)
        plans[name] = StudyPlan(
            study,
            settings.trials,
            settings.space.distributions(spec.model),
            train.to_dict(),
            settings.seed,
        )
    if not settings.ray_address:  # fail fast on bad data before starting anything
        load_dataset(settings.dataset, settings.data_dir, settings.download)

    start = {n: counts(p.study.get_trials(deepcopy=False)) for n, p in plans.items()}
    progress = Progress(
        {
            n: StudyProgress(p.target, start[n].finished, start[n].best, start[n].diverged)
            for n, p in plans.items()
        },
        out=out,
        every=settings.progress_every,
    )
    pack_size = pick_pack_size(settings)
    print(
        f"[hwsearch] storage {store.display_url}; {len(plans)} studies x {settings.trials} "
        f"trials; pack {pack_size}",
        file=out,
        flush=True,
    )
    progress.maybe_print(force=True)
    if all(c.finished >= settings.trials and c.running == 0 for c in start.values()):
        store.close()
        return LaunchResult(
            {n: (start[n].finished, settings.trials) for n in plans}, store.display_url
        )

    started_ray = start_ray(settings.ray_address)
    experiment_dir = tempfile.mkdtemp(prefix="hwsearch-tune-")
    launcher_id = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    searcher = None
    try:
        sink = WeightSink.options(scheduling_strategy=on_this_node()).remote()
        with Heartbeat(store.optuna, settings.heartbeat) as heartbeat:
            searcher = PackSearcher(
                store,
                plans,
                pack_size,
                heartbeat,
                progress,
                launcher_id,
                sink,
                max_failed_packs=settings.max_failed_packs,
            )
            resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
            trainable = tune.with_resources(tune.with_parameters(train_pack, sink=sink), resources)
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    num_samples=-1,
                    trial_dirname_creator=lambda trial: trial.trial_id,
                    max_concurrent_trials=settings.max_concurrent or cluster_slots(settings),
                    reuse_actors=True,  # a worker keeps torch imported between packs
                ),
                run_config=tune.RunConfig(
                    name="hwsearch",
                    storage_path=experiment_dir,
                    verbose=0,
                    log_to_file=False,
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                ),
            )
            tuner.fit()
    finally:
        if searcher is not None:
            searcher.fail_unfinished("launcher stopped before this trial finished; replaced")
        shutil.rmtree(experiment_dir, ignore_errors=True)
        if started_ray:
            import ray

            ray.shutdown()
    progress.maybe_print(force=True)
    if searcher is not None and searcher.gave_up:
        store.close()
        raise LaunchError(
            f"stopped after {searcher.failed_packs_in_a_row} packs failed in a row; "
            f"last: {searcher.last_error}"
        )
    final = {n: counts(p.study.get_trials(deepcopy=False)).finished for n, p in plans.items()}
    store.close()
    return LaunchResult({n: (final[n], settings.trials) for n in plans}, store.display_url)
