"""The search itself: open the studies, start (or join) Ray, let Tune run packs until every
study has exactly its target of finished trials.

In phases: open the studies, report where they stand, then (if anything is left to do) run the
search. Everything acquired on the way (storage, Ray, the heartbeat thread, Tune's temporary
directory, trials held) is released by one ``ExitStack``, on every path out, in reverse order.
What the user sees of it goes through :class:`LaunchEvents` (the application layer shows it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hwsearch.compat import stop_ray, tune_trials_on_prestarted_workers
from hwsearch.storage import StorageError, StudyStorage, open_storage
from hwsearch.storage.artifacts import ARTIFACT_DIR
from hwsearch.storage.keep import KeepPolicy
from hwsearch.storage.retry import find_cause
from hwsearch.training import family

from .errors import LaunchError
from .events import LaunchEvents
from .heartbeat import Heartbeat
from .packing import cpus_per_pack, pick_pack_size
from .planner import PackPlanner, StudyPlan
from .ray_setup import import_meanwhile, quiet_ray, start_ray
from .settings import LaunchSettings
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


def launch_search(
    settings: LaunchSettings, url: str, events: LaunchEvents,
    after_ray_start: Callable[[], None] = lambda: None,
) -> LaunchResult:
    """Run (or resume) the search of ``settings`` in the database at ``url``, until every
    study has its target of finished trials. ``after_ray_start`` runs once Ray is up (which
    installs signal handlers of its own)."""
    quiet_ray()
    with ExitStack() as stack:
        store = open_storage(url, allow_other_tables=settings.allow_other_tables)
        stack.callback(store.close)
        existing = store.study_names()
        for config in settings.configs():  # a mismatched study stops everything, first
            name = study_name(config, settings.study_prefix, existing)
            check_study(store.optuna, name, config, settings.seed, settings.space,
                        adopt=settings.adopt)
            check_artifact_dir_of(store, name, settings.artifacts)
        plans = open_plans(store, settings)
        pack_size = pick_pack_size(settings)
        events.begin(store.display_url, pack_size, settings.trials,
                     {name: store.counts(name) for name in plans}, settings.train.epochs,
                     {name: plan.cost for name, plan in plans.items()})
        events.tick(force=True)
        if any(_left(store, name, plan.target) for name, plan in plans.items()):
            _run(stack, store, plans, settings, events, pack_size, after_ray_start)
            events.tick(force=True)
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
        if settings.artifacts and ARTIFACT_DIR not in study.user_attrs:
            study.set_user_attr(ARTIFACT_DIR, settings.artifacts)
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


def check_artifact_dir_of(store: StudyStorage, name: str, artifacts: str | None) -> None:
    """A study keeps its weights in one place: a launch naming another directory than the
    one it records is refused (leaving ``artifacts`` out uses the recorded one)."""
    if artifacts is None or name not in store.study_names():
        return
    recorded = store.optuna.get_study_user_attrs(store.study_id(name)).get(ARTIFACT_DIR)
    if recorded is not None and recorded != artifacts:
        raise LaunchError(f"study {name!r} keeps its weights in {recorded}, not {artifacts}; "
                          f"give `artifacts` {recorded} or leave it out")


def _left(store: StudyStorage, name: str, target: int) -> bool:
    c = store.counts(name)
    return c.finished < target or c.running > 0


def _run(
    stack: ExitStack,
    store: StudyStorage,
    plans: dict[str, StudyPlan],
    settings: LaunchSettings,
    events: LaunchEvents,
    pack_size: int,
    after_ray_start: Callable[[], None],
) -> None:
    """Start Ray, then let Tune run packs until the planner says every study is done."""
    importing = import_meanwhile("ray.tune", f"{__package__}.searcher", f"{__package__}.trainable")
    stack.callback(importing.join)  # never left importing while the interpreter exits
    timings = Timings()
    stack.callback(events.done, timings)
    local = start_ray(settings.ray_address)
    if local is not None:
        stack.callback(stop_ray)
        stack.enter_context(tune_trials_on_prestarted_workers(local.environ))
    importing.join()
    from ray import tune

    from .searcher import PackSearcher
    from .sink import WeightSink
    from .trainable import train_pack

    after_ray_start()
    timings.ray_ready = timings.now()
    experiment_dir = tempfile.mkdtemp(prefix="hwsearch-tune-")
    stack.callback(shutil.rmtree, experiment_dir, ignore_errors=True)
    heartbeat = stack.enter_context(Heartbeat(store, settings.heartbeat))
    planner = PackPlanner(
        store,
        plans,
        pack_size,
        holder=heartbeat,
        events=events,
        launcher_id=f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        heartbeat_interval=settings.heartbeat,
        max_failed_packs=settings.max_failed_packs,
        keep=KeepPolicy.parse(settings.keep_weights),
    )
    sink = WeightSink.options(scheduling_strategy=on_this_node()).remote()
    searcher = PackSearcher(planner, events, sink, timings)
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
        cause = find_cause(e, (StorageError, LaunchError, KeyboardInterrupt), depth=10)
        if cause is None:
            raise
        raise cause from None
    timings.fit_done = timings.now()
    if planner.gave_up:
        raise LaunchError(
            f"stopped after {planner.failed_packs_in_a_row} packs failed in a row; "
            f"last: {planner.last_error}"
        )
