"""Edges refused (issue 21): storage that cannot keep a study, a database that is not ours,
paths and operating-system errors, names, memory. Each refusal is one line on stderr naming
the value, exit code 2, no traceback, and nothing created or changed: the working directory
and the database are compared byte for byte before and after.

Rows are members of a class, not single cases: each class gets several.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from hwtest import free_port, hwsearch_env, pg_admin_connect, pg_scratch, pg_url

LAUNCH = ["launch", "--models", "plain", "--depths", "2", "--trials", "1", "--download"]
READS = {
    "status": ["status"],
    "best": ["best"],
    "trials": ["trials", "--study", "s"],
    "export": ["export", "--study", "s", "--out", "m.pt2"],
    "report": ["report", "--out", "r"],
    "dashboard": ["dashboard", "--port", str(free_port())],
}


def _env() -> dict[str, str]:
    return {k: v for k, v in hwsearch_env().items() if not k.startswith("HWSEARCH_STORAGE")}


def listing(*roots: Path) -> dict[str, bytes | str]:
    """Every path under ``roots`` with its bytes (a file) or its kind (anything else)."""
    out: dict[str, bytes | str] = {}
    for root in roots:
        for p in [root, *root.rglob("*")]:
            if p.is_symlink():
                out[str(p)] = "link " + os.readlink(p)
            elif p.is_file():
                out[str(p)] = p.read_bytes()
            else:
                out[str(p)] = "other"
    return out


def refuse(argv: list[str], cwd: Path, *says: str, watch: tuple[Path, ...] = ()) -> str:
    """Run ``hwsearch argv`` in ``cwd``: exit 2, one line holding each of ``says``, no
    traceback, nothing under ``cwd`` (and ``watch``) created or changed. Returns the line."""
    before = listing(cwd, *watch)
    out = subprocess.run([sys.executable, "-m", "hwsearch", *argv], cwd=cwd, env=_env(),
                         capture_output=True, text=True, timeout=120)  # a hang guard
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    for words in says:
        assert words in lines[0], (words, lines[0])
    assert listing(cwd, *watch) == before
    return lines[0]


# -- 1. storage that cannot keep a study -----------------------------------------------------

IN_MEMORY = ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true",
             "sqlite:///file:db1?mode=memory&cache=shared&uri=true",
             "sqlite:///file:%3Amemory%3A?uri=true"]


@pytest.mark.parametrize(("command", "url"), [
    *(("launch", url) for url in IN_MEMORY), ("status", IN_MEMORY[0]),
    ("dashboard", IN_MEMORY[2]), ("report", IN_MEMORY[3])])
def test_an_in_memory_database_is_refused(url: str, command: str, tmp_path: Path) -> None:
    argv = LAUNCH if command == "launch" else READS[command]
    refuse([*argv, "--storage", url], tmp_path, "in-memory database", "allowed:")


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.db")
    return d / "pipe.db"


def _socket(d: Path) -> Path:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock.db"))
    s.close()  # the socket file stays
    return d / "sock.db"


def _directory(d: Path) -> Path:
    (d / "dir.db").mkdir()
    return d / "dir.db"


def _link_to_null(d: Path) -> Path:
    (d / "null.db").symlink_to("/dev/null")
    return d / "null.db"


SPECIAL: dict[str, tuple[Callable[[Path], Path], str]] = {
    "/dev/null": (lambda d: Path("/dev/null"), "under /dev"),
    "/dev/shm file": (lambda d: Path("/dev/shm/hwsearch-edge-test.db"), "under /dev"),
    "/proc": (lambda d: Path("/proc/self/hwsearch.db"), "under /proc"),
    "/sys": (lambda d: Path("/sys/kernel/hwsearch.db"), "under /sys"),
    "a link to /dev/null": (_link_to_null, "under /dev"),
    "a named pipe": (_fifo, "is a named pipe"),
    "a socket": (_socket, "is a socket"),
    "a directory": (_directory, "is a directory"),
}


@pytest.mark.parametrize(("command", "kind"), [
    *(("launch", kind) for kind in SPECIAL), ("status", "/dev/null"),
    ("report", "a named pipe"), ("best", "a directory")])
def test_a_special_file_is_refused_and_nothing_appears_beside_it(
    kind: str, command: str, tmp_path: Path
) -> None:
    make, says = SPECIAL[kind]
    path = make(tmp_path)
    argv = LAUNCH if command == "launch" else READS[command]
    dev = sorted(os.listdir("/dev"))
    refuse([*argv, "--storage", f"sqlite:///{path}"], tmp_path, str(path), says, "allowed:")
    assert sorted(os.listdir("/dev")) == dev  # no null.lock, null-wal, …
    assert not Path("/dev/shm/hwsearch-edge-test.db").exists()


# -- 2. a database that is not ours ------------------------------------------------------------


def _app_db(path: Path) -> str:
    """A user's application database: two tables of its own, no studies."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER)")
        conn.exec_driver_sql("INSERT INTO users (name) VALUES ('ada')")
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("command", ["launch", *READS])
def test_another_applications_sqlite_file_is_refused(command: str, tmp_path: Path) -> None:
    url = _app_db(tmp_path / "app.db")
    argv = LAUNCH if command == "launch" else READS[command]
    line = refuse([*argv, "--storage", url], tmp_path, "2 other table(s)", "'orders'",
                  "no Optuna studies", "empty database")
    if command == "launch":
        assert "--allow-other-tables" in line


def test_allow_other_tables_adds_the_study_tables_beside_them(tmp_path: Path) -> None:
    from hwsearch.storage import StorageError, open_storage

    url = _app_db(tmp_path / "app.db")
    with pytest.raises(StorageError, match="no Optuna studies"):
        open_storage(url)
    store = open_storage(url, allow_other_tables=True)
    store.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert conn.exec_driver_sql("SELECT name FROM users").scalars().all() == ["ada"]
    engine.dispose()
    assert {"users", "orders", "studies", "trials"} <= tables
    open_storage(url).close()  # it holds studies now: ours as well


def _pg_tables(database: str) -> list[str]:
    engine = sa.create_engine(pg_url(database), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = sorted(sa.inspect(conn).get_table_names())
    engine.dispose()
    return tables


@pytest.mark.parametrize("command", ["launch", "status", "dashboard"])
def test_another_applications_postgresql_database_is_refused(
    command: str, pg_database: str, tmp_path: Path
) -> None:
    with pg_scratch(f"{pg_database}_app") as app:
        with pg_admin_connect() as admin:
            admin.execute(f'ALTER DATABASE "{app}" OWNER TO postgres')
        engine = sa.create_engine(pg_url(app), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE invoices (id serial PRIMARY KEY)")
        engine.dispose()
        argv = LAUNCH if command == "launch" else READS[command]
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{app}"
        refuse([*argv, "--storage", url], tmp_path, "'invoices'", "no Optuna studies")
        assert _pg_tables(app) == ["invoices"]


@pytest.mark.parametrize("command", list(READS))
def test_a_read_command_never_creates_the_file(command: str, tmp_path: Path) -> None:
    refuse([*READS[command], "--storage", f"sqlite:///{tmp_path / 'none.db'}"], tmp_path,
           "no database at")


@pytest.mark.parametrize("command", ["status", "report", "dashboard"])
def test_a_read_command_on_an_empty_file_creates_no_table(command: str, tmp_path: Path) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    refuse([*READS[command], "--storage", f"sqlite:///{tmp_path / 'empty.db'}"], tmp_path,
           "holds no Optuna studies")
