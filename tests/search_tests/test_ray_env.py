"""The environment of a local Ray started by a launch: no database credentials (the driver
holds the URL; workers get parameters, not the database), and the variable Tune would give each
trial actor as a runtime environment, so that trials can take the workers Ray prestarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from hwtest import REPO, hwsearch_env

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent(
    """
    import os, ray
    from hwsearch.search.ray_setup import start_ray
    start_ray(None)
    try:
        @ray.remote(num_cpus=0)
        def seen():
            return {k: os.environ.get(k) for k in
                    ("HWSEARCH_STORAGE", "HWSEARCH_STORAGE_FILE", "PGPASSWORD")}
        print("worker", sorted(k for k, v in ray.get(seen.remote()).items() if v))
        print("driver", sorted(k for k in ("HWSEARCH_STORAGE", "PGPASSWORD") if os.environ.get(k)))
    finally:
        ray.shutdown()
    """
)


def test_local_ray_workers_get_no_credentials() -> None:
    env = hwsearch_env(
        HWSEARCH_STORAGE="postgresql+psycopg://u:pw-ray-env@127.0.0.1/db",
        HWSEARCH_STORAGE_FILE="/nonexistent/url",
        PGPASSWORD="pw-ray-env",
    )
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "worker []" in lines
    assert "driver ['HWSEARCH_STORAGE', 'PGPASSWORD']" in lines  # restored for the driver


NICE_PROBE = textwrap.dedent(
    """
    import json, os, ray
    from hwsearch.compat import stop_ray
    from hwsearch.search.ray_setup import start_ray
    start_ray(None)
    try:
        @ray.remote(num_cpus=1)
        def niceness():
            return os.nice(0)
        print(json.dumps({"driver": os.nice(0), "worker": ray.get(niceness.remote()),
                          "left": os.environ.get("RAY_worker_niceness")}))
    finally:
        stop_ray()
    """
)


@pytest.mark.parametrize("users", [None, "2"])
def test_local_ray_workers_run_at_the_launchs_priority(users: str | None) -> None:
    """Ray starts its workers 15 steps nicer than itself, so any program at normal priority
    would take the CPU from the trials; a local launch's workers run at its own priority (here
    a launch under ``nice -n 3``), or at the increment the user set for Ray."""
    env = hwsearch_env()
    env.pop("RAY_worker_niceness", None)
    if users is not None:
        env["RAY_worker_niceness"] = users
    out = subprocess.run(["nice", "-n", "3", sys.executable, "-c", NICE_PROBE], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["driver"] == min(os.nice(0) + 3, 19)  # 19: the nicest Linux allows
    assert seen["worker"] == min(seen["driver"] + int(users or 0), 19)
    assert seen["left"] == users  # the driver's environment as it was


PRESTART_PROBE = textwrap.dedent(
    """
    import contextlib, json, os, sys, tempfile, time
    import ray
    from ray import tune
    from ray.util.placement_group import placement_group, remove_placement_group
    from hwsearch.compat import stop_ray, tune_trials_on_prestarted_workers
    from hwsearch.search.ray_setup import start_ray

    local = start_ray(None)
    driver = os.environ.get("PL_DISABLE_FORK")
    logs = ray._private.worker._global_node.get_logs_dir_path()

    def prestarted(connected=False):
        # worker-<id>-ffffffff-<pid>.out from its start; python-core-worker-<id>_<pid>.log once
        # it connects
        names = os.listdir(logs)
        ids = {n.split("-")[3].split("_")[0] for n in names if n.startswith("python-core-worker-")}
        return sorted(int(n[:-4].rsplit("-", 1)[1]) for n in names
                      if n.startswith("worker-") and "-ffffffff-" in n and n.endswith(".out")
                      and (not connected or n.split("-")[1] in ids))

    # Tune reserves every trial's CPU in a placement group before the trial asks for a worker.
    # Hold every CPU that way, longer than Ray lets an idle worker live beyond the unreserved
    # CPUs (one second, checked every 200 ms), once the prestarted workers have connected.
    cpus = ray.cluster_resources()["CPU"]
    deadline = time.monotonic() + 120
    while len(prestarted(connected=True)) < cpus and time.monotonic() < deadline:
        time.sleep(0.1)
    held = placement_group([{"CPU": cpus}])
    ray.get(held.ready(), timeout=120)
    time.sleep(2.0)
    remove_placement_group(held)

    def trainable(config):
        tune.report({"pid": os.getpid(), "var": os.environ.get("PL_DISABLE_FORK"),
                     "runtime_env": dict(ray.get_runtime_context().runtime_env)})

    patch = (tune_trials_on_prestarted_workers(local.environ) if sys.argv[1] == "patched"
             else contextlib.nullcontext())
    with patch, tempfile.TemporaryDirectory() as tmp:
        grid = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(num_samples=2, max_concurrent_trials=2),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        ).fit()
    trials = [{k: r.metrics[k] for k in ("pid", "var", "runtime_env")} for r in grid]
    seen = {"driver": driver, "prestarted": prestarted(), "trials": trials}  # Ray's logs, while up
    stop_ray()
    print(json.dumps(seen))
    """
)


@pytest.mark.parametrize("how", ["patched", "as_tune_does"])
def test_tune_trials_can_take_the_workers_ray_prestarted(how: str) -> None:
    """Tune gives each trial actor a runtime environment (one variable), so Ray starts a worker
    for it instead of using one it started when the driver connected; a local launch puts that
    variable in Ray's own environment and registers the actors without one. The trials still
    see the variable; the driver's environment is left as it was.

    Ray ends idle workers beyond its unreserved CPUs, and Tune's placement groups reserve the
    CPUs before the trials ask for workers; a local Ray is told to keep them, so the probe holds
    every CPU for two seconds first (a race Ray won in 4 of 6 launches on a loaded machine).
    Which idle worker an actor gets is still Ray's choice, so the patched side requires one
    trial, not both, on a prestarted worker; with a runtime environment none can be."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("Ray prestarts one worker per CPU: two trials need two")
    env = hwsearch_env()
    env.pop("PL_DISABLE_FORK", None)
    out = subprocess.run([sys.executable, "-c", PRESTART_PROBE, how], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["driver"] is None  # restored after ray.init
    trials = seen["trials"]
    assert len(trials) == 2 and seen["prestarted"]
    assert all(trial["var"] == "1" for trial in trials)
    on_prestarted = [trial["pid"] in seen["prestarted"] for trial in trials]
    if how == "patched":
        assert all(trial["runtime_env"] == {} for trial in trials)
        assert any(on_prestarted)
    else:
        assert all(trial["runtime_env"]["env_vars"] == {"PL_DISABLE_FORK": "1"}
                   for trial in trials)
        assert not any(on_prestarted)
