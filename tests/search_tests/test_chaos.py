"""The chaos suite: faults injected into real searches (real Ray, real PostgreSQL, real MNIST,
tiny nets on CPU), each ending with exact counts: no trial lost, none duplicated.

Each test ends only what it started, by PID or by its own session; servers and namespaces are
its own (``hwtest.pgserver``, ``hwtest.netns``). Marked ``chaos`` (and ``slow``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hwsearch.storage.records import LAUNCHER, outcome
from hwtest import (
    PG_PASSWORD,
    hwsearch_env,
    netns,
    parts,
    run_hwsearch,
    stop_processes_naming,
    storage_off_argv,
)
from hwtest.chaos import chaos_launch_args as _args
from hwtest.chaos import (
    end_what_the_test_started,  # noqa: F401 (autouse)
    log_tail,
    session_processes,
    start_hwsearch,
)
from hwtest.launches import FINISHED, assert_exact, mid_trial, trials, wait_for
from hwtest.netns import Lan
from hwtest.pgserver import PGServer

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
NAME = "mnist-highway-d10"


def _finished_values(url: str, name: str) -> dict[int, float | None]:
    return {t.number: t.value for t in trials(url, name) if t.state in FINISHED}


# -- PostgreSQL -------------------------------------------------------------------------------


def test_postgres_restart_mid_search(
    pg_server: PGServer, mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """The server restarts while a trial trains: the launcher waits for it and finishes."""
    url, name = pg_server.url("hw", PG_PASSWORD), f"{prefix}{NAME}"
    log = tmp_path / "log"
    proc = start_hwsearch(*_args(url, mnist_dir, prefix), log=log, cwd=tmp_path)
    wait_for(mid_trial(url, name), 240, "a trial's first epoch", proc)
    pg_server.stop()  # ends every session: each pooled connection of the launcher is dead
    # Down until the launcher has met the outage (its retry says so), then back.
    wait_for(lambda: "retrying for up to" in log.read_text(), 120,
             "the launcher to meet the outage", proc)
    pg_server.start()
    assert proc.wait(timeout=400) == 0, log_tail(log)
    got = assert_exact(url, name, 3)
    assert len(got) == 3 + sum(t.state == TrialState.FAIL for t in got)  # no duplicates
    assert PG_PASSWORD not in log.read_text()


def test_postgres_outage_past_the_budget_exits_2_and_a_rerun_resumes(
    pg_server: PGServer, mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    url, name = pg_server.url("hw", PG_PASSWORD), f"{prefix}{NAME}"
    log = tmp_path / "log"
    args = _args(url, mnist_dir, prefix)
    proc = start_hwsearch(*args, log=log, cwd=tmp_path, env=hwsearch_env(HWSEARCH_DB_RETRY_S="4"))
    wait_for(lambda: len(_finished_values(url, name)) >= 1, 240, "a finished trial", proc)
    wait_for(mid_trial(url, name), 120, "a trial's first epoch", proc)
    before = _finished_values(url, name)
    pg_server.stop()
    assert proc.wait(timeout=300) == 2, log_tail(log)
    text = log.read_text()
    last = text.strip().splitlines()[-1]
    assert last.startswith("hwsearch: error: the database") and "rerun" in last, last
    assert "Traceback" not in text and PG_PASSWORD not in text
    wait_for(lambda: not session_processes(proc.pid), 120, "the launcher's Ray to end")

    pg_server.start()
    again = run_hwsearch(*args, cwd=tmp_path, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    got = assert_exact(url, name, 3)
    after = {t.number: t.value for t in got}
    assert all(after[n] == v for n, v in before.items())  # nothing finished was lost or redone
    assert len(got) == 3 + sum(t.state == TrialState.FAIL for t in got)


# -- signals ----------------------------------------------------------------------------------


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own, short enough for Ray's socket paths; removed after (with
    the Ray session logs in it)."""
    path = Path(tempfile.mkdtemp(prefix="hc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ctrl_c_leaves_nothing_running_then_an_orphan_does_not_stall_the_rerun(
    mnist_dir: Path, tmp_path: Path, prefix: str, short_tmp: Path
) -> None:
    """Ctrl-C (SIGINT to the launcher's process group, as a terminal sends it): exit 130, no
    RUNNING trial, no temporary directory, no process of its session left. Then a RUNNING trial
    from a plain Optuna ``study.ask()`` (never beaten, no recorded interval) is in the study:
    the rerun fails it after the grace period and completes."""
    url, name = f"sqlite:///{tmp_path / 's.db'}", f"{prefix}{NAME}"
    tmp, log = short_tmp, tmp_path / "log"
    args = _args(url, mnist_dir, prefix)
    proc = start_hwsearch(*args, log=log, cwd=tmp_path, env=hwsearch_env(TMPDIR=str(tmp)))
    wait_for(mid_trial(url, name), 240, "a trial's first epoch", proc)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=300) == 130, log_tail(log)
    wait_for(lambda: not session_processes(proc.pid), 120, "every process of the launch to end")
    assert not [t for t in trials(url, name) if t.state == TrialState.RUNNING]
    assert not list(tmp.glob("hwsearch-tune-*"))
    assert "Traceback" not in log.read_text()

    optuna.load_study(study_name=name, storage=url).ask()  # the orphan
    again = run_hwsearch(*args, cwd=tmp_path, timeout=400, env=hwsearch_env(TMPDIR=str(tmp)))
    assert again.returncode == 0, again.stderr[-3000:]
    got = assert_exact(url, name, 3)
    orphans = [t for t in got if LAUNCHER not in t.user_attrs]
    assert len(orphans) == 1 and orphans[0].state == TrialState.FAIL
    assert "heartbeat" in outcome(orphans[0])


def test_sigterm_exits_143_and_a_second_signal_exits_at_once(
    mnist_dir: Path, tmp_path: Path, prefix: str, short_tmp: Path
) -> None:
    url, name = f"sqlite:///{tmp_path / 's.db'}", f"{prefix}{NAME}"
    tmp = short_tmp
    env = hwsearch_env(TMPDIR=str(tmp))
    args = _args(url, mnist_dir, prefix)
    proc = start_hwsearch(*args, log=tmp_path / "log1", cwd=tmp_path, env=env)
    wait_for(mid_trial(url, name), 240, "a trial's first epoch", proc)
    os.kill(proc.pid, signal.SIGTERM)  # `kill PID`: the launcher alone
    assert proc.wait(timeout=300) == 143, log_tail(tmp_path / "log1")
    wait_for(lambda: not session_processes(proc.pid), 120, "every process of the launch to end")
    assert not [t for t in trials(url, name) if t.state == TrialState.RUNNING]
    assert not list(tmp.glob("hwsearch-tune-*"))

    proc = start_hwsearch(*args, log=tmp_path / "log2", cwd=tmp_path, env=env)
    wait_for(mid_trial(url, name), 240, "a trial's first epoch", proc)
    os.killpg(proc.pid, signal.SIGINT)
    # Two at once would be one to Python: the second goes once the first is taken, within
    # milliseconds (the cleanup it starts is over in about half a second).
    wait_for(lambda: "stopping (again" in (tmp_path / "log2").read_text(), 120,
             "the first signal to be taken", proc, every=0.005)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=300) == 130, log_tail(tmp_path / "log2")
    # The second handler's own line: it exits there (os._exit), not after the cleanup.
    assert "interrupted again" in (tmp_path / "log2").read_text()
    wait_for(lambda: not session_processes(proc.pid), 120, "Ray to die with its driver")


# -- multi-host Ray ---------------------------------------------------------------------------

RAY_CLI = "from ray.scripts.scripts import main; main()"
# The head declares a silent node dead after about 3 s (Ray's default is about 30 s).
FAST_HEALTH = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


@pytest.fixture
def lan() -> Iterator[Lan]:
    why = netns.available()
    if why:
        parts.missing("network namespaces (root, iproute2)", why)
    with Lan(3) as made:
        yield made


def test_multi_host_ray_loses_a_worker_host_mid_search(
    lan: Lan, mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """Three hosts (network namespaces with their own addresses): a Ray head with no CPUs for
    trials, two one-CPU workers, a search on PostgreSQL (a server of the test's own on the
    bridge). One worker host's link is cut while it trains: its trials are FAIL and replaced
    on the other, and the study ends with exact counts."""
    head, workers = lan.hosts[0], lan.hosts[1:]
    pg = PGServer(host=lan.gateway)
    temp_dir = tempfile.mkdtemp(prefix="rn-", dir="/tmp")  # every Ray process names it
    env = hwsearch_env(**FAST_HEALTH)
    try:
        pg.start()
        pg.create_database("hw")
        url, name = pg.url("hw", PG_PASSWORD), f"{prefix}{NAME}"
        port = 6380 + random.randint(0, 500)
        common = ["--disable-usage-stats", "--num-gpus", "0"]
        started = head.run(
            [sys.executable, "-c", RAY_CLI, "start", "--head", "--temp-dir", temp_dir,
             "--node-ip-address", head.ip, "--port", str(port), "--num-cpus", "0",
             "--include-dashboard", "false", *common],
            capture_output=True, text=True, env=env, timeout=180)
        assert started.returncode == 0, started.stderr[-2000:]
        for w in workers:
            joined = w.run(
                [sys.executable, "-c", RAY_CLI, "start", "--address", f"{head.ip}:{port}",
                 "--node-ip-address", w.ip, "--num-cpus", "1", *common],
                capture_output=True, text=True, env=env, timeout=180)
            assert joined.returncode == 0, joined.stderr[-2000:]

        args = _args(url, mnist_dir, prefix, **{"--trials": "4", "--max-concurrent": "2",
                                                 "--ray-address": f"{head.ip}:{port}"})
        log = tmp_path / "log"
        argv, launch_env = storage_off_argv(args, env)  # no password on a command line
        with open(log, "wb") as out:
            proc = head.popen([sys.executable, "-m", "hwsearch", *argv], stdout=out,
                              stderr=subprocess.STDOUT, cwd=tmp_path, env=launch_env,
                              start_new_session=True)
        training: list[tuple[int, str]] = []  # (trial number, its worker's address)

        def a_worker_trains() -> bool:
            for t in trials(url, name):
                ip = t.user_attrs.get("ray_node_ip")
                if t.state == TrialState.RUNNING and t.intermediate_values and ip:
                    training.append((t.number, ip))
                    return True
            return False

        wait_for(a_worker_trains, 300, "a trial to report an epoch on a worker", proc)
        cut_mid_trial, cut_ip = training[0]
        lost = next(w for w in workers if w.ip == cut_ip)
        lost.cut()
        assert proc.wait(timeout=400) == 0, log_tail(log)
        got = assert_exact(url, name, 4)
        failed = [t for t in got if t.state == TrialState.FAIL]
        assert cut_mid_trial in {t.number for t in failed}, [(t.number, t.state) for t in got]
        # Ray may place one more trial on the lost host before it declares the host dead (about
        # 3 s): that trial fails before its first epoch, so no address was ever recorded for it.
        assert all(t.user_attrs.get("ray_node_ip") in (lost.ip, None) for t in failed)
        assert all("infrastructure failure" in outcome(t) for t in failed)
        assert len(got) == 4 + len(failed)  # each lost trial replaced once, nothing duplicated
        survivor = next(w for w in workers if w is not lost).ip
        late = [t for t in got if t.state in FINISHED and t.number > max(f.number for f in failed)]
        assert late and all(t.user_attrs["ray_node_ip"] == survivor for t in late)
    finally:
        stop_processes_naming(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        pg.close()


# -- launchers and heartbeats -----------------------------------------------------------------


def test_paused_launcher_says_one_line_and_exits_cleanly(
    mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """Launcher A is paused (SIGSTOP) mid-trial, past its grace period, while launcher B runs
    the same study: B fails A's trial as stale and replaces it. Resumed (SIGCONT), A finds
    the trial taken over, says so in one line, drops its result and exits cleanly (0)."""
    url, name = f"sqlite:///{tmp_path / 's.db'}", f"{prefix}{NAME}"
    args = _args(url, mnist_dir, prefix, **{"--trials": "4"})
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start_hwsearch(*args, log=log_a, cwd=tmp_path)
    b = None
    try:
        wait_for(mid_trial(url, name), 240, "A's first epoch", a)
        held = [t.number for t in trials(url, name) if t.state == TrialState.RUNNING]
        os.kill(a.pid, signal.SIGSTOP)  # the launcher only: its Ray trial trains on
        b = start_hwsearch(*args, log=log_b, cwd=tmp_path)

        def taken_over() -> bool:
            got = {t.number: t for t in trials(url, name)}
            return any(got[n].state == TrialState.FAIL for n in held)

        wait_for(taken_over, 240, "B to fail A's trial as stale", b)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    assert b.wait(timeout=400) == 0, log_tail(log_b)
    assert a.wait(timeout=400) == 0, log_tail(log_a)
    text = log_a.read_text()
    notes = [line for line in text.splitlines() if "taken over" in line]
    assert 1 <= len(notes) <= len(held), text[-3000:]
    assert "Traceback" not in text and "Error" not in text, text[-3000:]
    got = assert_exact(url, name, 4)
    failed = [t for t in got if t.state == TrialState.FAIL]
    assert {t.number for t in failed} <= set(held) and failed
    assert all("heartbeat" in outcome(t) for t in failed)
    assert len(got) == 4 + len(failed)


def test_launchers_with_different_heartbeats_fail_no_live_trial(
    mnist_dir: Path, tmp_path: Path, prefix: str
) -> None:
    """A beats every 20 s (grace 60 s), B every second (grace 3 s): B must judge A's trials
    by A's interval, so no live trial is failed and no trial is lost or duplicated."""
    url, name = f"sqlite:///{tmp_path / 's.db'}", f"{prefix}{NAME}"
    slow = _args(url, mnist_dir, prefix, **{"--trials": "6", "--heartbeat": "20"})
    quick = _args(url, mnist_dir, prefix, **{"--trials": "6", "--heartbeat": "1"})
    a = start_hwsearch(*slow, log=tmp_path / "a.log", cwd=tmp_path)
    b = start_hwsearch(*quick, log=tmp_path / "b.log", cwd=tmp_path)
    assert a.wait(timeout=500) == 0, log_tail(tmp_path / "a.log")
    assert b.wait(timeout=500) == 0, log_tail(tmp_path / "b.log")
    got = assert_exact(url, name, 6)
    assert len(got) == 6, [(t.number, t.state.name, outcome(t)) for t in got]
    intervals = {t.user_attrs[LAUNCHER]: t.user_attrs["heartbeat_interval"] for t in got}
    assert sorted(set(intervals.values())) == [1, 20]  # both launchers ran trials
