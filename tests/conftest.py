"""The suite's fixtures, in one place: real MNIST, one torch thread, and storages on SQLite
and the real PostgreSQL. Helpers that are not fixtures live in the ``hwtest`` package.

A missing real part skips its tests locally and fails them in CI (``hwtest.parts``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hwtest import PG_ADMIN, REPO, parts, pg_admin_connect, pg_scratch, pg_url

if TYPE_CHECKING:
    from hwsearch.training.data import Dataset
    from hwtest.pgserver import PGServer

_IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _has_idx_files(directory: Path) -> bool:
    """True when ``directory`` (or its ``raw/``) holds all four MNIST IDX files, .gz or not."""
    return any(
        all((d / stem).is_file() or (d / f"{stem}.gz").is_file() for stem in _IDX_STEMS)
        for d in (directory, directory / "raw")
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST directory: $HWSEARCH_MNIST_DIR, else ``../shared/data/MNIST`` beside the
    repository (which holds ``raw/*.gz``). Skips, saying where it looked, when it is missing."""
    override = os.environ.get("HWSEARCH_MNIST_DIR")
    path = Path(override) if override else REPO / ".." / "shared" / "data" / "MNIST"
    path = path.resolve()
    if not _has_idx_files(path):
        source = "$HWSEARCH_MNIST_DIR" if override else "the default location"
        parts.missing("MNIST", f"not found at {path} ({source}); expected "
                      f"{', '.join(_IDX_STEMS)} (optionally .gz) there or in its raw/; set "
                      "HWSEARCH_MNIST_DIR")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> Dataset:
    """Real MNIST, loaded once per session (on the CPU)."""
    from hwsearch.training.data import load_dataset

    return load_dataset("mnist", mnist_dir)


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module, restored afterwards. Small nets gain nothing from
    more, and on a small shared CPU box spinning OpenMP threads make them several times slower.
    Use with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch  # here, not at the top: modules that never use torch should not pay for it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the real server, dropped at the end of the session."""
    try:
        pg_admin_connect().close()
    except Exception as e:  # noqa: BLE001
        parts.missing("PostgreSQL", f"no server at {PG_ADMIN}: {e}")
    with pg_scratch(f"hwsearch_test_{uuid.uuid4().hex[:8]}") as name:
        yield name


@pytest.fixture
def pg_server() -> Iterator[PGServer]:
    """A PostgreSQL server of the test's own, with a database ``hw``: for tests that stop or
    restart it (never the shared one)."""
    from hwtest.pgserver import PGServer, server_binaries

    why = server_binaries()
    if why:
        parts.missing("PostgreSQL server binaries", why)
    server = PGServer()
    try:
        server.start()
        server.create_database("hw")
        yield server
    finally:
        server.close()


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    """Under ``$HWSEARCH_REQUIRE_REAL_PARTS=1`` (CI) a skip for a missing real part fails."""
    report = yield
    if report.skipped and parts.required():
        longrepr = report.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        if parts.PREFIX in text:
            report.outcome = "failed"
            report.longrepr = f"{text} (${parts.REQUIRE_ENV} is set: real parts are required)"
    return report


_POSTGRES_FIXTURES = {"pg_database", "pg_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` every test that needs a PostgreSQL server (the shared one or its own),
    so ``-m postgres`` runs that tier and ``-m "not postgres"`` runs without a server."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("storage_url") == "postgresql"
        if names & _POSTGRES_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.postgres)
