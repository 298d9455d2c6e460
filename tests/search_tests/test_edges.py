"""Edges refused (issue 21): storage that cannot keep a study, a database that is not ours,
paths and operating-system errors, names, memory. Each refusal is one line on stderr naming
the value, exit code 2, no traceback, and nothing created or changed: the working directory
and the database are compared byte for byte before and after.

Rows are members of a class, not single cases: each class gets several.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from hwtest import foreign_study, free_port, hwsearch_env, pg_admin_connect, pg_scratch, pg_url

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


# -- 4. paths and operating-system errors -------------------------------------------------------


def _study_db(d: Path) -> str:
    url = f"sqlite:///{d / 'study.db'}"
    foreign_study(url, "mnist-plain-d2", trials=1)
    return url


CONFIGS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "a directory": (lambda d: (d / "c.toml").mkdir(), ("c.toml is a directory",)),
    "a binary file": (lambda d: (d / "c.toml").write_bytes(bytes(range(256)) * 4),
                      ("c.toml is not UTF-8", "allowed: a TOML file")),
    "a huge file": (lambda d: (d / "c.toml").write_text("# " + "x" * (2 << 20)),
                    ("c.toml is over 1024 KiB",)),
    "a huge number": (lambda d: (d / "c.toml").write_text("epochs = 1e400\n"),
                      ("epochs", "inf")),
    "a huge integer": (lambda d: (d / "c.toml").write_text(f"width = {10**40}\n"),
                       ("width", "must be <= 4096")),
    "a huge prefix": (lambda d: (d / "c.toml").write_text(f"study_prefix = '{'p' * 5000}'\n"),
                      ("study-prefix", "5000 characters", "at most 100")),
    "a devicefile": (lambda d: (d / "c.toml").symlink_to("/dev/zero"), ("c.toml is over",)),
}


@pytest.mark.parametrize("kind", CONFIGS)
def test_a_config_file_that_cannot_be_read_is_one_line(kind: str, tmp_path: Path) -> None:
    make, says = CONFIGS[kind]
    make(tmp_path)
    refuse([*LAUNCH, "--config", "c.toml"], tmp_path, *says)


def test_an_output_path_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    url = _study_db(tmp_path)
    (tmp_path / "file").write_text("x")
    refuse(["report", "--out", "file/sub", "--storage", url, "--skip-data-figures"], tmp_path,
           "--out file/sub", "is a file, not a directory")
    refuse(["export", "--study", "mnist-plain-d2", "--out", "file/m.pt2", "--storage", url],
           tmp_path, "--out file/m.pt2", "does not exist")
    ro = _read_only_dir(tmp_path / "ro")
    try:
        refuse(["report", "--out", "ro/r", "--storage", url, "--skip-data-figures"], tmp_path,
               "--out ro/r", "cannot write in", "read-only file system")
        refuse(["export", "--study", "mnist-plain-d2", "--out", "ro/m.pt2", "--storage", url],
               tmp_path, "--out ro/m.pt2", "cannot write in")
    finally:
        subprocess.run(["umount", "--lazy", str(ro)], check=False)


def _read_only_dir(d: Path) -> Path:
    """``d``, a read-only bind mount of a directory of its own (root only; else skipped)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    d.mkdir()
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(d)], check=True)
    return d


@pytest.mark.parametrize(("port", "says"), [("70000", "port 70000 out of range"),
                                            ("-1", "port -1 out of range"),
                                            ("0", "allowed: 1..65535")])
def test_a_port_out_of_range_is_one_line(port: str, says: str, tmp_path: Path) -> None:
    refuse(["dashboard", "--port", port, "--storage", _study_db(tmp_path)], tmp_path, says)


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    url = _study_db(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        refuse(["dashboard", "--port", str(port), "--storage", url], tmp_path,
               f"cannot listen on 127.0.0.1:{port}", "in use")


@pytest.mark.parametrize(("given", "says"), [
    ("missing", "data directory missing does not exist"),
    ("empty", "no mnist IDX files in empty"),
    ("afile", "data directory afile is a file"),
])
@pytest.mark.parametrize("command", ["launch", "train", "report"])
def test_a_data_directory_that_is_not_one_is_named(command: str, given: str, says: str,
                                                   tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("x")
    argv = {"launch": [*LAUNCH[:-1]], "train": ["train", "--device", "cpu"],
            "report": ["report", "--out", "r", "--storage", _study_db(tmp_path)]}[command]
    refuse([*argv, "--data-dir", given], tmp_path, says)


# -- 5. data checked before anything starts --------------------------------------------------


def _bad_mnist(d: Path) -> Path:
    """MNIST-named files whose test labels reach 10."""
    import gzip
    import struct

    import numpy as np

    def idx(a: np.ndarray) -> bytes:
        return struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(
            np.uint8).tobytes()

    d.mkdir()
    for stem, array in (("train-images-idx3-ubyte", np.zeros((20, 28, 28))),
                        ("train-labels-idx1-ubyte", np.zeros(20)),
                        ("t10k-images-idx3-ubyte", np.zeros((5, 28, 28))),
                        ("t10k-labels-idx1-ubyte", np.full(5, 10))):
        (d / f"{stem}.gz").write_bytes(gzip.compress(idx(array)))
    return d


@pytest.mark.parametrize("command", ["launch", "train", "report"])
def test_bad_data_is_refused_before_anything_starts(command: str, tmp_path: Path) -> None:
    _bad_mnist(tmp_path / "data")
    argv = {"launch": [*LAUNCH[:-1], "--storage", f"sqlite:///{tmp_path / 'new.db'}"],
            "train": ["train", "--device", "cpu"],
            "report": ["report", "--out", "r", "--storage", _study_db(tmp_path)]}[command]
    line = refuse([*argv, "--data-dir", "data"], tmp_path, "t10k", "allowed: 0..9")
    if command == "report":
        assert "--skip-data-figures" in line
    assert not (tmp_path / "new.db").exists()  # no study, no Ray: refused first


# -- 7. no silent degradation ------------------------------------------------------------------


def test_a_report_without_its_data_says_so_unless_told(tmp_path: Path) -> None:
    url = _study_db(tmp_path)
    refuse(["report", "--out", "r", "--storage", url], tmp_path, "no --data-dir for mnist",
           "--skip-data-figures")
    (tmp_path / "empty").mkdir()
    ok = subprocess.run([sys.executable, "-m", "hwsearch", "report", "--out", "r", "--storage",
                         url, "--data-dir", "empty", "--skip-data-figures"], cwd=tmp_path,
                        env=_env(), capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "warning: no mnist IDX files in empty" in ok.stderr
    page = (tmp_path / "r" / "index.html").read_text()
    assert "no mnist IDX files in empty" in page  # the page says so too


def test_status_honours_the_study_name(tmp_path: Path) -> None:
    url = _study_db(tmp_path)
    line = refuse(["status", "--study", "mnist-plain-d3", "--storage", url], tmp_path,
                  "no study 'mnist-plain-d3'", "did you mean 'mnist-plain-d2'")
    assert "Traceback" not in line
    ok = subprocess.run([sys.executable, "-m", "hwsearch", "status", "--study", "mnist-plain-d2",
                         "--storage", url, "--format", "json"], cwd=tmp_path, env=_env(),
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert [r["study"] for r in json.loads(ok.stdout)] == ["mnist-plain-d2"]


def test_a_study_of_another_tool_is_never_drawn_as_a_net(tmp_path: Path) -> None:
    from hwsearch.report.studies import load_studies
    from hwsearch.storage import open_storage

    url = _study_db(tmp_path)  # named like ours; one parameter x, no recorded configuration
    store = open_storage(url, create=False)
    try:
        records, foreign = load_studies(store, "mnist")
    finally:
        store.close()
    assert records == [] and foreign == ["mnist-plain-d2"]


# -- 8. names shown to people ------------------------------------------------------------------

BAD_NAMES = ["a\x1b[31mred", "tab\there", "nl\nx", "bell\x07", "rtl\u202eevil", "nul\x00"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_non_printable_prefix_or_name_is_refused(name: str, tmp_path: Path) -> None:
    if "\x00" not in name:  # argv cannot carry a NUL: only the config file can
        refuse([*LAUNCH, "--study-prefix", name], tmp_path, "study-prefix",
               "non-printable character", "allowed: printable characters")
    (tmp_path / "c.toml").write_text(f"study_prefix = {json.dumps(name)}\n")
    refuse([*LAUNCH, "--config", "c.toml"], tmp_path, "non-printable character")
    if "\x00" not in name:
        url = _study_db(tmp_path)
        for argv in (["status"], ["best"], ["trials"]):
            line = refuse([*argv, "--study", name, "--storage", url], tmp_path,
                          "study", "non-printable character")
            assert "\x1b" not in line and "\x07" not in line


def test_names_made_elsewhere_are_shown_escaped(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="evil\x1b]0;pwned\x07\x1b[2J", storage=url)
    for fmt in ("table", "csv", "json"):
        out = subprocess.run([sys.executable, "-m", "hwsearch", "status", "--storage", url,
                              "--format", fmt], cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout
        assert "evil" in out.stdout


# -- 9. memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--depth", "1000", "--width", "4096", "--device", "cpu"],
    ["--depth", "1000", "--width", "4096", "--batch-size", "65536", "--device", "cpu"],
])
def test_train_checks_memory_before_it_allocates(argv: list[str], tmp_path: Path) -> None:
    refuse(["train", *argv], tmp_path, "a highway net (depth 1000, width 4096", "needs at least",
           "GiB", "allowed: a smaller --width, --depth or --batch-size")
