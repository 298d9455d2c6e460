"""Fault injection: a killed worker, a killed launcher, divergent trials, concurrent launchers.

Each ends with exactly ``--trials`` finished trials per study, and failures say why.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hwsearch.storage.records import diverged_epoch, outcome
from hwtest import (
    kill_descendants,
    pg_url,
    run_hwsearch,
    slow_launch_args,
    start_hwsearch,
    tiny_launch_args,
)
from hwtest.launches import assert_exact, mid_trial, trials, wait_for

pytestmark = pytest.mark.slow


def test_worker_killed_mid_pack_is_replaced(tmp_path: Path, prefix: str, mnist_dir: Path) -> None:
    """A worker killed while training a pack of 2: both of its trials are FAIL, then replaced."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    name = f"{prefix}mnist-highway-d10"
    one_activation = tmp_path / "tanh.toml"  # so the pack is not split by activation
    one_activation.write_text('[space]\nactivation = ["tanh"]\n')
    args = slow_launch_args(url, str(mnist_dir), prefix, **{"--pack": "2", "--trials": "4"})
    proc = start_hwsearch(
        *args, "--config", str(one_activation), log=tmp_path / "log", cwd=tmp_path
    )
    wait_for(mid_trial(url, name), 240, "a trial to report its first epoch", proc)
    killed = kill_descendants(proc.pid, "ray::ImplicitFunc", signal.SIGKILL)
    assert killed, "no Tune worker process of this launcher found to kill"
    assert proc.wait(timeout=400) == 0, (tmp_path / "log").read_text()[-3000:]
    got = assert_exact(url, name, 4)
    failed = [t for t in got if t.state == TrialState.FAIL]
    assert len(failed) >= 2 and all(t.user_attrs["pack_size"] == 2 for t in failed)
    assert all("infrastructure failure" in outcome(t) for t in failed)


def test_killed_launcher_resumes_without_duplicates(
    tmp_path: Path, prefix: str, mnist_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    name = f"{prefix}mnist-highway-d10"
    args = slow_launch_args(url, str(mnist_dir), prefix, **{"--trials": "4"})
    proc = start_hwsearch(*args, log=tmp_path / "log1", cwd=tmp_path)

    def one_done_one_running() -> bool:
        states = [t.state for t in trials(url, name)]
        return TrialState.COMPLETE in states and TrialState.RUNNING in states

    wait_for(one_done_one_running, 300, "one finished and one running trial", proc)
    done_before = {t.number: t.value for t in trials(url, name) if t.state == TrialState.COMPLETE}
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the local Ray it started
    proc.wait()
    # status shows the killed launcher's trials as running but stale, with their beat's age,
    # once the grace period (3 × --heartbeat 2) has passed; table and CSV carry it too.
    def status(fmt: str) -> str:
        out = run_hwsearch("status", "--storage", url, "--format", fmt, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        return out.stdout

    wait_for(lambda: json.loads(status("json"))[0]["stale"] >= 1, 120, "a stale trial")
    (row,) = json.loads(status("json"))
    assert row["stale"] == row["running"] >= 1 and row["last_beat_s"] >= 6, row
    assert "stale" in status("table").splitlines()[0].split()
    assert "last_beat_s" in status("csv").splitlines()[0].split(",")

    again = run_hwsearch(*args, cwd=tmp_path, timeout=500)
    assert again.returncode == 0, again.stderr[-3000:]
    got = assert_exact(url, name, 4)
    for number, value in done_before.items():  # nothing finished was lost or redone
        assert got[number].state == TrialState.COMPLETE and got[number].value == value
    stale = [t for t in got if t.state == TrialState.FAIL]
    assert stale and all("heartbeat" in outcome(t) for t in stale)
    assert len(got) == 4 + len(stale)


def test_absurd_learning_rates_diverge_and_the_search_goes_on(
    tmp_path: Path, mnist_dir: Path
) -> None:
    # The draws depend on (seed, study name, trial number): this name and seed 2 give learning
    # rates 0.017 and 0.019 (which train) and four from 2.5 to 5e5 (which blow up).
    prefix = "absurd-"
    config = tmp_path / "absurd.toml"
    config.write_text('[space]\nactivation = ["relu"]\nlr = {low = 1e-2, high = 1e6, log = true}\n')
    url = f"sqlite:///{tmp_path / 'd.db'}"
    args = tiny_launch_args(
        url, str(mnist_dir), prefix, **{"--models": "highway", "--trials": "6", "--seed": "2"}
    )
    out = run_hwsearch(*args, "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    got = assert_exact(url, f"{prefix}mnist-highway-d2", 6)
    diverged = [t for t in got if t.state == TrialState.PRUNED]
    completed = [t for t in got if t.state == TrialState.COMPLETE]
    assert diverged and completed, [(t.params["lr"], t.state.name) for t in got]
    for t in diverged:
        assert outcome(t) == "diverged" and diverged_epoch(t) == 1
        assert t.params["lr"] > 1.0
    assert "diverged" in out.stderr  # progress says so


def test_two_launchers_share_one_postgres_study(
    tmp_path: Path, prefix: str, mnist_dir: Path, pg_database: str
) -> None:
    url = pg_url(pg_database)
    name = f"{prefix}mnist-highway-d10"
    args = slow_launch_args(url, str(mnist_dir), prefix, **{"--trials": "4"})  # they overlap
    procs = [start_hwsearch(*args, log=tmp_path / f"log{i}", cwd=tmp_path) for i in range(2)]
    for i, p in enumerate(procs):
        assert p.wait(timeout=500) == 0, (tmp_path / f"log{i}").read_text()[-3000:]
    got = assert_exact(url, name, 4)
    assert len(got) == 4  # no duplicates, and neither failed the other's live trials
    assert len({t.user_attrs["launcher"] for t in got}) == 2  # the work was shared


def test_systematic_failures_stop_the_launch_with_the_reason(
    tmp_path: Path, prefix: str, mnist_dir: Path
) -> None:
    """Workers that cannot train at all (here: asked for CUDA on a CPU-only cluster) must not
    be replaced forever: after a few failed packs in a row the launch stops and says why."""
    url = f"sqlite:///{tmp_path / 'f.db'}"
    args = tiny_launch_args(
        url, str(mnist_dir), prefix,
        **{"--models": "highway", "--pack": "1", "--max-failed-packs": "2"},
    )
    out = run_hwsearch(*args, "--device", "cuda", cwd=tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    last = out.stderr.strip().splitlines()[-1]
    # 2 or more: packs already running when the second failed may fail too
    assert re.search(r"stopped after [2-9] packs failed in a row; last: ConfigError", last), last
    assert "no CUDA device" in last
    got = trials(url, f"{prefix}mnist-highway-d2")
    assert got and all(t.state == TrialState.FAIL for t in got)
    assert "no CUDA device" in outcome(got[0])
