"""Every private API of a third-party library this project uses, and nowhere else.

Each has no public replacement (said below), and each is pinned by a test in
``tests/test_compat.py`` that fails loudly when the library moves or renames it. The tested
versions are pyproject's bounds (Ray < 2.61, Optuna < 5.1, torch 2.14).

Optuna's *schema* (not its Python API) is read and written by ``hwsearch.storage.schema``: a
persisted, versioned format rather than a private API, pinned by ``test_schema.py``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"
_ray_patch_lock = threading.Lock()
_tune_patch_lock = threading.Lock()


# -- Ray --------------------------------------------------------------------------------------


@contextmanager
def ray_keeps_loopback() -> Iterator[None]:
    """While held, Ray keeps 127.0.0.1 as a node address instead of swapping in the host's.

    Ray (2.5x, 2.60) resolves a loopback address to the host's network address, so a cluster
    bound to 127.0.0.1 (the safe default on a laptop, and what the tests use) would be left
    unreachable and a local Ray would listen on the network. Ray has no option for it; this
    replaces two functions of ``ray._private.services`` and restores them on exit. Held only
    around ``ray.init``: once the node exists, Ray reads its address from the node itself.
    """
    import ray._private.services as services

    with _ray_patch_lock:
        saved = services.resolve_ip_for_localhost, services.get_node_ip_address
        services.resolve_ip_for_localhost = lambda host: host
        services.get_node_ip_address = lambda address=None: LOOPBACK
        try:
            yield
        finally:
            services.resolve_ip_for_localhost, services.get_node_ip_address = saved


def init_local_ray(**kwargs: Any) -> None:
    """A fresh local Ray on 127.0.0.1: ``ray.init`` names the node address only through its
    private ``_node_ip_address`` argument."""
    import ray

    with ray_keeps_loopback():
        ray.init(address="local", _node_ip_address=LOOPBACK, **kwargs)


def ray_monitor_processes() -> list[Any]:
    """The ``subprocess.Popen`` of the autoscaler monitor this process's local Ray started
    (none when it joined a cluster, or started none). Ray keeps a node's processes only in
    ``ray._private.worker._global_node.all_processes``."""
    import ray._private.ray_constants as constants
    import ray._private.worker as worker

    node = getattr(worker, "_global_node", None)
    infos = [] if node is None else node.all_processes.get(constants.PROCESS_TYPE_MONITOR, [])
    return [info.process for info in infos]


def stop_ray() -> None:
    """``ray.shutdown()`` without its one-second wait on the autoscaler monitor: Ray (2.60)
    sends it SIGTERM, waits a second for an exit that does not come, then kills it. A local
    search needs no autoscaler by then, so it is killed first (about 1 s of every launch);
    ``ray.shutdown`` skips a process that has already exited."""
    import ray

    for process in ray_monitor_processes():
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    ray.shutdown()


def ray_keeps_idle_workers_env(count: int) -> dict[str, str]:
    """The variable that makes a local Ray keep up to ``count`` idle workers, whatever its
    placement groups hold, put in its environment before ``ray.init``.

    Ray (2.60) ends idle workers beyond its CPUs not yet reserved, every 200 ms once idle for a
    second. Tune reserves each trial's CPU in a placement group before the trial's actor asks
    for a worker, so in between Ray could end the workers it prestarted and start new ones for
    the trials (4 of 6 launches of two trials on a loaded 2-core machine). Ray takes its
    internal settings from ``RAY_<name>`` variables only; ``num_workers_soft_limit`` replaces the
    unreserved CPUs in that rule and nowhere else (Ray still prestarts one worker per CPU)."""
    return {"RAY_num_workers_soft_limit": str(count)}


def ray_workers_at_driver_priority_env() -> dict[str, str]:
    """The variable that makes a local Ray start its workers at the priority of the process
    that started it, put in its environment before ``ray.init``.

    Ray (2.60) starts every worker 15 steps nicer than its raylet, so any program at normal
    priority on the machine takes the CPU from the trials: 8 trials of depth 10 took 223–232 s
    beside two busy loops on two cores, 17–21 s with this (9–10 s with nothing beside them,
    docs/performance.md). A user
    who wants the search to yield runs ``nice hwsearch launch``: the raylet inherits it. Ray
    takes its internal settings from ``RAY_<name>`` variables only."""
    return {"RAY_worker_niceness": "0"}


# Ray Tune's ``class_cache.DEFAULT_ENV_VARS`` (2.60), known here without importing Tune (about a
# second) before ``ray.init``; tests/test_compat.py compares the two.
TUNE_TRIAL_DEFAULT_ENV = {"PL_DISABLE_FORK": "1"}


def tune_trial_env_vars() -> dict[str, str]:
    """The environment variables Ray Tune (2.60) gives every trial actor as a runtime
    environment: its defaults, and those it copies from the driver's environment. Tune keeps
    both lists only in ``ray.tune.execution.class_cache``."""
    from ray.tune.execution import class_cache

    env = dict(class_cache.DEFAULT_ENV_VARS)
    env.update({k: os.environ[k] for k in class_cache.ENV_VARS_TO_PROPAGATE if k in os.environ})
    return env


@contextmanager
def tune_trials_on_prestarted_workers(inherited: Mapping[str, str]) -> Iterator[None]:
    """While held, Tune registers its trial actor class without a runtime environment when
    every variable it would set there already has that value in ``inherited``, the environment
    a local Ray's processes, and so its workers, started with; otherwise as Tune does.

    With a runtime environment, Ray cannot place a trial actor on one of the workers it starts
    when the driver connects (those have none): it starts another, through its runtime
    environment agent, about a second before the trial's first line on two cores. Tune builds
    the environment only in ``_ActorClassCache.get``, replaced here and restored on exit."""
    import ray
    from ray.tune.execution.class_cache import _ActorClassCache

    original = _ActorClassCache.get

    def get(self: Any, trainable_cls: Any) -> Any:
        if trainable_cls not in self._cache:
            if any(inherited.get(k) != v for k, v in tune_trial_env_vars().items()):
                return original(self, trainable_cls)
            self._cache[trainable_cls] = ray.remote(trainable_cls)
        return self._cache[trainable_cls]

    with _tune_patch_lock:
        _ActorClassCache.get = get
        try:
            yield
        finally:
            _ActorClassCache.get = original


def ray_auto_address() -> str:
    """The GCS address ``ray.init(address="auto")`` would join: ``RAY_ADDRESS``, else the
    cluster ``ray start`` last recorded on this machine, else a GCS process found running.
    Ray resolves it only in ``ray._private.services``; ConnectionError when there is none."""
    import ray._private.services as services

    return str(services.get_ray_address_from_environment("auto", None))


# -- torch ------------------------------------------------------------------------------------


@contextmanager
def recompile_limit(at_least: int) -> Iterator[None]:
    """Let ``torch.compile`` compile a function ``at_least`` times (one compile per pack of a
    search; dynamo's default limit is 8), restored on exit. The limit exists only in
    ``torch._dynamo.config`` (``recompile_limit``, formerly ``cache_size_limit``)."""
    import torch._dynamo

    config = torch._dynamo.config
    name = next(n for n in ("recompile_limit", "cache_size_limit") if hasattr(config, n))
    before = getattr(config, name)
    setattr(config, name, max(before, at_least))
    try:
        yield
    finally:
        setattr(config, name, before)


def foreach_sgd_momentum_(
    params: Sequence[Any], bufs: Sequence[Any], grads: Sequence[Any], momenta: Sequence[Any],
    lrs: Sequence[Any],
) -> None:
    """``buf = μ·buf + g; p −= lr·buf`` over lists of tensors with per-tensor μ and lr
    (broadcast views), in a handful of fused kernels. ``torch.optim.SGD`` takes one lr and
    momentum per parameter group; the per-element ``torch._foreach_*`` ops it is built on are
    the only fused way to give every trial of a pack its own."""
    import torch

    torch._foreach_mul_(bufs, momenta)
    torch._foreach_add_(bufs, grads)
    steps = torch._foreach_mul(bufs, lrs)
    torch._foreach_sub_(params, steps)


def activation_grad(name: str) -> Any:
    """``(grad, output, into) -> into``: ``grad`` times the derivative of activation ``name``
    at the point where it output ``output``, written into ``into``: the kernels autograd runs
    for ``torch.tanh``, ``torch.sigmoid`` and ``torch.relu``, which ``torch`` exposes only as
    ``torch.ops.aten.*_backward`` (no public function computes them from the output)."""
    import torch

    aten = torch.ops.aten
    if name == "relu":
        return lambda grad, output, into: aten.threshold_backward.grad_input(
            grad, output, 0, grad_input=into)
    op = {"tanh": aten.tanh_backward, "sigmoid": aten.sigmoid_backward}[name]
    return lambda grad, output, into: op.grad_input(grad, output, grad_input=into)


# -- Optuna -----------------------------------------------------------------------------------


def trial_id_of(trial: Any) -> int:
    """The storage id of a ``FrozenTrial``: Optuna keeps it only as the private ``_trial_id``
    (its own ``upload_artifact`` reads it so); the public ``number`` counts within a study."""
    return int(trial._trial_id)
