"""Shared test helpers and fixtures for the search service and storage: real SQLite files and a
real PostgreSQL database per test session, a small MNIST subset, and helpers that run
``hwsearch`` as users do (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("HWSEARCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# A password the server ignores (trust auth) but every output is checked for.
PG_PASSWORD = "pw-" + uuid.uuid4().hex[:12]
REPO = Path(__file__).resolve().parents[1]


def _pg_admin_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the real server; fails (not skips) when the server is down in CI."""
    try:
        conn = _pg_admin_connect()
    except Exception as e:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI: {e}")
        pytest.skip(f"PostgreSQL not reachable: {e}")
    name = f"hwsearch_test_{uuid.uuid4().hex[:8]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with _pg_admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://postgres:{PG_PASSWORD}@127.0.0.1:5432/{database}"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on both backends; PostgreSQL tests get their own prefix space
    through unique study names (see ``prefix``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return pg_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="session")
def mnist_root() -> str:
    candidates = [os.environ.get("HWSEARCH_MNIST_DIR"), REPO.parent / "shared" / "data" / "MNIST"]
    for c in candidates:
        if c and (Path(c) / "raw" / "train-images-idx3-ubyte.gz").exists():
            return str(c)
    pytest.skip("real MNIST not found beside the checkout (../shared/data/MNIST)")


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


def run_hwsearch(
    *args: str, timeout: float = 600, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hwsearch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env=env or hwsearch_env(),
    )


def start_hwsearch(
    *args: str, cwd: Path | None = None, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """In its own session, so a test can kill the launcher and everything it started."""
    out = open(log, "wb")  # noqa: SIM115 - closed by the OS when the child exits
    return subprocess.Popen(
        [sys.executable, "-m", "hwsearch", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=cwd or REPO,
        env=env or hwsearch_env(),
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
