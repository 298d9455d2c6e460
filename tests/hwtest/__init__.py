"""Shared test helpers (the fixtures are in ``tests/conftest.py``): the test PostgreSQL's
URLs, its password and scratch databases, ``hwsearch`` run as users run it (a subprocess),
the arguments of small launches, and a free port.

Beside it: ``hwtest.fake_trials`` builds trials by hand; ``hwtest.search_builder`` runs small
real searches stored exactly as the service stores them; ``hwtest.launches`` watches a study
while a launch runs; ``hwtest.report_page`` reads a written report; ``hwtest.parts`` skips (or,
in CI, fails) a test whose real part is missing; ``hwtest.pgserver`` starts a PostgreSQL of
a test's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN = os.environ.get("HWSEARCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# A password the server ignores (trust auth) but every output is checked for.
PG_PASSWORD = "pw-" + uuid.uuid4().hex[:12]
REPO = Path(__file__).resolve().parents[2]


def pg_admin_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=60)


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:5432/{database}"


@contextmanager
def pg_scratch(name: str) -> Iterator[str]:
    """A database ``name`` made on the shared server for the block, dropped after."""
    with pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with pg_admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's pick), for a server the test starts."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def foreign_study(url: str, name: str = "mnist-highway-d10", trials: int = 2) -> str:
    """A study made by Optuna alone (no recorded configuration), as ``optuna create-study``
    and the dashboard make them, with ``trials`` finished trials of one parameter ``x``."""
    import optuna

    study = optuna.create_study(study_name=name, storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=trials)
    return url


def hwsearch_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(
        {
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def storage_off_argv(
    args: tuple[str, ...] | list[str], env: dict[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    """``--storage URL`` moved to ``$HWSEARCH_STORAGE`` when the URL holds a password, as a
    user must (hwsearch refuses a password on the command line); other arguments unchanged."""
    argv, env = list(args), dict(env or hwsearch_env())
    if "--storage" in argv:
        i = argv.index("--storage")
        if i + 1 < len(argv) and _has_password(argv[i + 1]):
            env["HWSEARCH_STORAGE"] = argv[i + 1]
            del argv[i : i + 2]
    return argv, env


def _has_password(url: str) -> bool:
    from hwsearch.storage.url import has_password

    return has_password(url)


def run_hwsearch(
    *args: str, timeout: float = 600, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv, env = storage_off_argv(args, env)
    return subprocess.run(
        [sys.executable, "-m", "hwsearch", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=env,
    )


def start_hwsearch(
    *args: str, cwd: Path | None = None, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """In its own session, so a test can kill the launcher and everything it started."""
    argv, env = storage_off_argv(args, env)
    out = open(log, "wb")  # noqa: SIM115 - closed by the OS when the child exits
    return subprocess.Popen(
        [sys.executable, "-m", "hwsearch", *argv],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd or REPO,
        env=env,
        start_new_session=True,
    )


def tiny_launch_args(storage: str, data_dir: str, prefix: str, **overrides: str) -> list[str]:
    """A search small enough for 2 cores: 2-layer nets, 256 examples, 1 epoch."""
    flags = {
        "--storage": storage,
        "--dataset": "mnist",
        "--data-dir": data_dir,
        "--models": "plain,highway",
        "--depths": "2",
        "--trials": "3",
        "--epochs": "1",
        "--limit-train": "256",
        "--batch-size": "64",
        "--study-prefix": prefix,
        "--heartbeat": "2",
        "--progress-every": "2",
    }
    flags.update(overrides)
    return ["launch", *[x for kv in flags.items() for x in kv]]


def slow_launch_args(storage: str, data_dir: str, prefix: str, **overrides: str) -> list[str]:
    """One 10-layer highway study whose trials run one at a time, so a test can break
    something while a trial trains. A trial takes about half a second on a 2-core CPU
    (2026-12-06): a test that must act while most of the search is left gives more epochs."""
    flags = {
        "--models": "highway",
        "--depths": "10",
        "--limit-train": "2000",
        "--epochs": "3",
        "--trials": "3",
        "--pack": "1",
        "--max-concurrent": "1",
        **overrides,
    }
    return tiny_launch_args(storage, data_dir, prefix, **flags)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` in the process tree (from /proc), nearest first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        child, parent = int(text.split()[0]), int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kill_descendants(pid: int, needle: str, sig: int) -> list[int]:
    """Send ``sig`` to the processes below ``pid`` whose command line holds ``needle`` (only
    what this test started, never a process elsewhere on the machine); returns their PIDs."""
    import os

    hit = [p for p in descendants(pid) if needle in command_line(p)]
    for p in hit:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    return hit


def stop_processes_naming(needle: str, grace: float = 10.0) -> list[int]:
    """End the processes whose command line holds ``needle`` (a path unique to this test, such
    as a Ray cluster's own temp dir): SIGTERM, then SIGKILL after ``grace`` seconds. For
    daemons a test started that left its process tree; returns their PIDs."""
    import os
    import signal
    import time

    me = os.getpid()
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and int(p.name) != me and needle in command_line(int(p.name))]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)
    return pids
