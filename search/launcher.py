"""``hwsearch launch``: open the studies, start (or join) Ray, let Tune run packs until every
study has exactly its target of finished trials.

In phases: check the data, open the studies, report where they stand, then (if anything is
left to do) run the search. Everything acquired on the way (storage, Ray, the heartbeat
thread, Tune's temporary directory, trials held) is released by one ``ExitStack``, on every
path out, in reverse order.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TextIO

from hwsearch.storage import StorageError, StudyStorage, open_storage, resolve_url
from hwsearch.storage.retry import find_cause
from hwsearch.training import family
from hwsearch.training.datasets import check_dataset

from .errors import LaunchError
from .heartbeat import Heartbeat
from .packing import cpus_per_pack, pick_pack_size  # noqa: F401  (pick_pack_size: re-exported)
from .planner import PackPlanner, StudyPlan
from .progress import Progress, StudyProgress
from .quiet import quiet_optuna
from .ray_setup import quiet_ray, start_ray
from .settings import LaunchSettings
from .signals import Interrupted, interruptible, take_back
from .studies import check_study, open_study, study_name
from .timings import Timings

if TYPE_CHECKING:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

RELEASE_REASON = "launcher stopped before this trial finished; replaced"


@dataclass(frozen=True)
class LaunchResult:
    studies: dict[str, tuple[int, int]]  # name -> (finished, target)
    storage: str


def cluster_slots(settings: LaunchSettings, cpus: float) -> int:
    """How many packs the cluster can run at once. Tune lets a custom searcher keep only one
    trial pending unless told this, which leaves a second node idle while the first starts."""
    import ray

    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) / cpus
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
    quiet_optuna()
    quiet_ray()
    with interruptible(), ExitStack() as stack:
        if not settings.ray_address:  # bad data is refused before the database is opened
            check_dataset(settings.train.dataset, settings.train.data_dir,
                          settings.train.download)  # (a cluster's workers have their own)
        store = open_storage(resolve_url(settings.storage, settings.storage_file))
        stack.callback(store.close)
        existing = store.study_names()
        for config in settings.configs():  # a mismatched study stops everything, first
            check_study(store.optuna, study_name(config, settings.study_prefix, existing),
                        config, settings.seed, settings.space, adopt=settings.adopt)
        plans = open_plans(store, settings)
        progress = _progress(store, plans, out, settings.progress_every)
        pack_size = pick_pack_size(settings)
        print(
            f"[hwsearch] storage {store.display_url}; {len(plans)} studies x {settings.trials} "
            f"trials; pack {pack_size}",
            file=out,
            flush=True,
        )
        progress.maybe_print(force=True)
        if any(_left(store, name, plan.target) for name, plan in plans.items()):
            _run(stack, store, plans, settings, progress, pack_size)
            progress.maybe_print(force=True)
        final = {n: store.counts(n).finished for n in plans}
        return LaunchResult({n: (final[n], settings.trials) for n in plans}, store.display_url)


def open_plans(store: StudyStorage, settings: LaunchSettings) -> dict[str, StudyPlan]:
    """Open (or create) one study per configuration; a mismatched one stops everything."""
    plans: dict[str, StudyPlan] = {}
    # Absolute: Tune runs each trial in a directory of its own.
    data_dir = os.path.abspath(settings.train.data_dir) if settings.train.data_dir else None
    existing = store.study_names()
    for config in settings.configs():
        name = study_name(config, settings.study_prefix, existing)
        study = open_study(store.optuna, name, config, settings.seed, settings.space,
                           adopt=settings.adopt)
        train = replace(config, data_dir=data_dir)
        plans[name] = StudyPlan(
            study,
            settings.trials,
            settings.space.distributions(config.model),
            train.to_dict(),
            settings.seed,
            family(config.model).trial_flops(config),
        )
    return plans


def _left(store: StudyStorage, name: str, target: int) -> bool:
    c = store.counts(name)
    return c.finished < target or c.running > 0


def _progress(
    store: StudyStorage, plans: dict[str, StudyPlan], out: TextIO, every: float
) -> Progress:
    studies = {}
    for name, plan in plans.items():
        c = store.counts(name)
        studies[name] = StudyProgress(plan.target, c.finished, c.best, c.diverged)
    return Progress(studies, out=out, every=every)


def _run(
    stack: ExitStack,
    store: StudyStorage,
    plans: dict[str, StudyPlan],
    settings: LaunchSettings,
    progress: Progress,
    pack_size: int,
) -> None:
    """Start Ray, then let Tune run packs until the planner says every study is done."""
    import ray
    from ray import tune

    from .searcher import PackSearcher
    from .trainable import WeightSink, train_pack

    timings = Timings()
    stack.callback(lambda: print(timings.line(), file=progress.out, flush=True))
    if start_ray(settings.ray_address):
        stack.callback(ray.shutdown)
    take_back()  # Ray's driver installs a SIGTERM handler of its own
    timings.ray_ready = timings.now()
    experiment_dir = tempfile.mkdtemp(prefix="hwsearch-tune-")
    stack.callback(shutil.rmtree, experiment_dir, ignore_errors=True)
    heartbeat = stack.enter_context(Heartbeat(store, settings.heartbeat))
    planner = PackPlanner(
        store,
        plans,
        pack_size,
        holder=heartbeat,
        events=progress,
        launcher_id=f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        heartbeat_interval=settings.heartbeat,
        max_failed_packs=settings.max_failed_packs,
    )
    sink = WeightSink.options(scheduling_strategy=on_this_node()).remote()
    searcher = PackSearcher(planner, progress, sink, timings)
    stack.callback(searcher.release, RELEASE_REASON)  # before the heartbeat stops
    cpus = cpus_per_pack(settings)
    resources = {"cpu": cpus, "gpu": settings.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(train_pack, sink=sink), resources)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            trial_dirname_creator=lambda trial: trial.trial_id,
            max_concurrent_trials=settings.max_concurrent or cluster_slots(settings, cpus),
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
    try:
        tuner.fit()
    except Exception as e:  # Tune wraps what its callbacks raise: say the cause in one line
        cause = find_cause(e, (StorageError, LaunchError, Interrupted), depth=10)
        if cause is None:
            raise
        raise cause from None
    timings.fit_done = timings.now()
    if planner.gave_up:
        raise LaunchError(
            f"stopped after {planner.failed_packs_in_a_row} packs failed in a row; "
            f"last: {planner.last_error}"
        )
