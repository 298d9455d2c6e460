"""A real two-node Ray cluster on this machine (``ray start``), searched through --ray-address
against PostgreSQL. Ray is kept on 127.0.0.1 (see hwsearch/compat.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hwtest import (
    free_port,
    hwsearch_env,
    pg_url,
    run_hwsearch,
    stop_processes_naming,
    tiny_launch_args,
)

pytestmark = pytest.mark.slow
RAY_CLI = (
    "from hwsearch.compat import ray_keeps_loopback; from ray.scripts.scripts import main\n"
    "with ray_keeps_loopback(): main()"
)


def _ray(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RAY_CLI, *args],
        capture_output=True,
        text=True,
        env=hwsearch_env(),
        timeout=180,
    )


@pytest.fixture
def cluster() -> Iterator[str]:
    port = free_port()  # not 6379: Redis holds it
    address = f"127.0.0.1:{port}"
    # A temp dir of its own: every process of this cluster names it on its command line, so
    # the teardown ends exactly these (never `ray stop`, which ends every Ray on the machine).
    temp_dir = tempfile.mkdtemp(prefix="rt-", dir="/tmp")  # short: Ray's socket paths
    head = _ray(
        "start",
        "--temp-dir",
        temp_dir,
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "1",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
    )
    assert head.returncode == 0, head.stderr[-2000:]
    try:
        worker = _ray(
            "start",
            "--address",
            address,
            "--node-ip-address",
            "127.0.0.1",
            "--num-cpus",
            "1",
            "--disable-usage-stats",
        )
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield address
    finally:
        stop_processes_naming(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_search_runs_on_both_nodes(
    cluster: str, pg_database: str, prefix: str, mnist_dir: Path, tmp_path: Path
) -> None:
    url = pg_url(pg_database)
    args = tiny_launch_args(
        url,
        str(mnist_dir),
        prefix,
        **{
            "--models": "highway",
            "--depths": "10",
            "--trials": "4",
            "--pack": "1",
            "--epochs": "2",
            "--limit-train": "2000",
            "--ray-address": cluster,
        },
    )
    out = run_hwsearch(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = optuna.load_study(study_name=f"{prefix}mnist-highway-d10", storage=url).get_trials()
    # all four finished (a diverged draw is PRUNED, still finished); none lost
    assert len(trials) == 4
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs["ray_node_id"] for t in trials}) == 2
    assert {t.user_attrs["ray_node_ip"] for t in trials} == {"127.0.0.1"}
