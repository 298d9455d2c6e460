"""Every third-party private API in hwsearch/compat.py is still where we use it, and nothing
outside compat.py reaches for one. A library upgrade that moves one fails here, loudly."""

from __future__ import annotations

import re

import pytest

from hwsearch import compat
from hwtest import REPO

PACKAGES = ("models", "training", "storage", "search", "report", "hwsearch", "benchmarks")
# A private attribute of torch, Ray or Optuna: `torch._x`, `ray._private`, `optuna.x._y`, or an
# object's `._trial_id`-style internals we once used.
PRIVATE = re.compile(
    r"\b(?:torch|ray|optuna)(?:\.[A-Za-z]\w*)*\._[a-z]\w*|\._trial_id\b|\._study_id\b"
    r"|\._rng\b|_get_stale_trial_ids|\b_node_ip_address"
)


def test_no_private_api_outside_compat() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "hwsearch" / "compat.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PRIVATE.search(line.split("#")[0]):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_check_catches_one() -> None:
    assert PRIVATE.search("torch._foreach_add_(a, b)")
    assert PRIVATE.search("import ray._private.services as s")
    assert PRIVATE.search("trial._trial_id")
    assert not PRIVATE.search("torch.compiler.reset()")


def test_ray_services_functions_exist_and_are_restored() -> None:
    import ray._private.services as services

    before = services.resolve_ip_for_localhost, services.get_node_ip_address
    with compat.ray_keeps_loopback():
        assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
        assert services.get_node_ip_address() == compat.LOOPBACK
    assert (services.resolve_ip_for_localhost, services.get_node_ip_address) == before


def test_ray_init_still_takes_a_node_address() -> None:
    import inspect

    import ray

    assert "_node_ip_address" in inspect.getsource(ray.init)  # taken from **kwargs


def test_dynamo_recompile_limit_is_raised_then_restored() -> None:
    import torch._dynamo

    config = torch._dynamo.config
    name = next(n for n in ("recompile_limit", "cache_size_limit") if hasattr(config, n))
    before = getattr(config, name)
    with compat.recompile_limit(before + 100):
        assert getattr(config, name) == before + 100
    assert getattr(config, name) == before


def test_foreach_sgd_momentum_matches_the_formula() -> None:
    import torch

    p, buf, g = torch.ones(2, 3), torch.full((2, 3), 0.5), torch.full((2, 3), 2.0)
    mu, lr = torch.tensor([[0.9], [0.0]]), torch.tensor([[0.1], [1.0]])
    want_buf = mu * buf + g
    want_p = p - lr * want_buf
    compat.foreach_sgd_momentum_([p], [buf], [g], [mu], [lr])
    torch.testing.assert_close(buf, want_buf)
    torch.testing.assert_close(p, want_p)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_grad_is_autograds_own(name: str) -> None:
    """The derivative written into ``into`` is, bit for bit, what autograd computes."""
    import torch

    x = torch.linspace(-3, 3, 41, dtype=torch.float64, requires_grad=True)
    y = getattr(torch, name)(x)
    grad = torch.linspace(0.5, 2.0, 41, dtype=torch.float64)
    y.backward(grad)
    into = torch.empty_like(grad)
    out = compat.activation_grad(name)(grad, y.detach(), into)
    assert out.data_ptr() == into.data_ptr()
    assert torch.equal(into, x.grad)


@pytest.mark.parametrize("name", ["ray", "optuna"])
def test_pyproject_bounds_the_tested_minor_versions(name: str) -> None:
    import importlib.metadata
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(rf"{name}\b", d))
    upper = re.search(r"<\s*([\d.]+)", spec)
    assert upper, f"{spec!r} has no upper bound"
    installed = tuple(int(x) for x in importlib.metadata.version(name).split(".")[:2])
    bound = tuple(int(x) for x in upper.group(1).split(".")[:2])
    assert installed < bound <= (installed[0], installed[1] + 1), (spec, installed)


def test_ray_auto_address_reads_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.9.8.7:6380")
    assert compat.ray_auto_address() == "10.9.8.7:6380"


def test_a_frozen_trials_storage_id_is_read() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    for trial in study.trials:
        assert storage.get_trial(compat.trial_id_of(trial)).number == trial.number


def test_the_monitor_is_looked_up_under_rays_own_process_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where ``stop_ray`` looks: Ray's node keeps its processes by type, the monitor under
    ``ray_constants.PROCESS_TYPE_MONITOR`` (a stand-in node here; the slow test below starts
    a real Ray)."""
    import types

    import ray._private.ray_constants as constants
    import ray._private.worker as worker

    monitor, other = object(), object()
    node = types.SimpleNamespace(all_processes={
        constants.PROCESS_TYPE_MONITOR: [types.SimpleNamespace(process=monitor)],
        constants.PROCESS_TYPE_RAYLET: [types.SimpleNamespace(process=other)]})
    monkeypatch.setattr(worker, "_global_node", node)
    assert compat.ray_monitor_processes() == [monitor]
    monkeypatch.setattr(worker, "_global_node", None)  # joined a cluster, or no Ray
    assert compat.ray_monitor_processes() == []


STOP_PROBE = """
import json, ray
from hwsearch.compat import ray_monitor_processes, stop_ray
from hwsearch.search.ray_setup import start_ray
start_ray(None)
monitors = ray_monitor_processes()
alive = [p.poll() is None for p in monitors]
stop_ray()
print(json.dumps({"monitors": len(monitors), "alive": alive,
                  "ended": [p.poll() is not None for p in monitors],
                  "initialized": ray.is_initialized(), "after": len(ray_monitor_processes())}))
"""


@pytest.mark.slow
def test_stop_ray_finds_the_monitor_of_a_local_ray_and_ends_it() -> None:
    """``stop_ray`` kills the autoscaler monitor before ``ray.shutdown``: the private path to
    it (``_global_node.all_processes``) must still lead to exactly one live monitor; were it
    lost, shutdown would only be a second slower, so this is the check that says so."""
    import json
    import subprocess
    import sys

    from hwtest import hwsearch_env

    done = subprocess.run([sys.executable, "-c", STOP_PROBE], cwd=REPO, env=hwsearch_env(),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"monitors": 1, "alive": [True], "ended": [True], "initialized": False,
                    "after": 0}


def test_tune_trial_env_is_known_without_importing_tune() -> None:
    """The launcher puts Tune's default trial variables in a local Ray's environment before
    ``ray.init``, from a copy; this is the check that the copy is still Tune's."""
    from ray.tune.execution import class_cache

    assert compat.TUNE_TRIAL_DEFAULT_ENV == class_cache.DEFAULT_ENV_VARS
    assert "PL_DISABLE_FORK" in compat.tune_trial_env_vars()


class _Trainable:
    pass


def test_tune_trials_register_without_a_runtime_env_only_when_inherited() -> None:
    from ray.tune.execution.class_cache import _ActorClassCache

    original = _ActorClassCache.get
    inherited = compat.tune_trial_env_vars()
    with compat.tune_trials_on_prestarted_workers(inherited):
        plain = _ActorClassCache().get(_Trainable)
    with compat.tune_trials_on_prestarted_workers({}):  # Ray's processes lack Tune's variables
        fallback = _ActorClassCache().get(_Trainable)
    with compat.tune_trials_on_prestarted_workers({**inherited, "PL_DISABLE_FORK": "0"}):
        other_value = _ActorClassCache().get(_Trainable)
    assert _ActorClassCache.get is original  # restored
    assert "runtime_env" not in plain._default_options
    for cls in (fallback, other_value):
        assert cls._default_options["runtime_env"] == {"env_vars": inherited}
