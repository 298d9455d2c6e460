"""Readers who cannot write (issue 21, class 3): a study database on a read-only mount, or a
file this user may read but not write, answers status, best, trials, export, report (written
elsewhere) and the dashboard. The database is in write-ahead-log mode, as every launch leaves
it, so SQLite would need to make its ``-shm`` index beside it: readers who cannot write open
it read-only (``mode=ro``), and immutable where even that cannot work; readers who may write
open it with every write refused (``query_only``), and leave the folder as it was.

The mount is a real one: a bind mount of a test directory, remounted read-only (root only;
skipped otherwise). The other user is ``nobody``, run through ``setpriv``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwsearch.storage import open_storage
from hwtest import REPO, free_port, hwsearch_env
from hwtest.search_builder import Config, run_study

GOOD = ({"lr": 0.05, "momentum": 0.9, "lr_decay": 0.95, "activation": "relu",
         "gate_bias": -1.0},)


@pytest.fixture(scope="module")
def study_db(mnist, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small real study (weights stored), in WAL mode as a launch leaves it."""
    path = tmp_path_factory.mktemp("made") / "study.db"
    store = open_storage(f"sqlite:///{path}")
    try:
        name = run_study(store, mnist, Config("highway", 2, 2, GOOD), epochs=1,
                         limit_train=300)
    finally:
        store.close()
    assert path.read_bytes()[18:20] == b"\x02\x02"  # the header's WAL mode
    return path, name


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone may enter (pytest's own are root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="hwsearch-ro-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def read_only_mount(open_dir: Path, study_db: tuple[Path, str]) -> Iterator[Path]:
    """``study.db`` on a read-only bind mount (at ``open_dir/ro``)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root")
    src, ro = open_dir / "src", open_dir / "ro"
    src.mkdir()
    ro.mkdir()
    shutil.copy(study_db[0], src / "study.db")
    subprocess.run(["mount", "--bind", str(src), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
        with pytest.raises(OSError):
            (ro / "probe").write_text("x")  # really read-only
        yield ro
    finally:
        if subprocess.run(["umount", str(ro)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(ro)], check=False)  # busy: detach it


def _run(argv: list[str], cwd: Path, user: str | None = None) -> subprocess.CompletedProcess:
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if user else []
    env = {**hwsearch_env(), "HOME": str(cwd), "PYTHONPATH": str(REPO)}
    return subprocess.run([*prefix, sys.executable, "-m", "hwsearch", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def _answers_every_reader(db: Path, name: str, out: Path, user: str | None = None) -> None:
    url = f"sqlite:///{db}"
    before = sorted(os.listdir(db.parent)), db.read_bytes()
    status = _run(["status", "--storage", url, "--format", "json"], out, user)
    assert status.returncode == 0, status.stderr
    assert [r["study"] for r in json.loads(status.stdout)] == [name]
    best = _run(["best", "--storage", url, "--format", "json"], out, user)
    assert best.returncode == 0, best.stderr
    assert json.loads(best.stdout)[0]["number"] is not None
    trials = _run(["trials", "--study", name, "--storage", url, "--format", "csv"], out, user)
    assert trials.returncode == 0, trials.stderr
    assert len(trials.stdout.splitlines()) == 3  # header and two trials
    export = _run(["export", "--study", name, "--out", str(out / "m.pt2"), "--storage", url],
                  out, user)
    assert export.returncode == 0, export.stderr
    assert (out / "m.pt2").stat().st_size > 0
    report = _run(["report", "--out", str(out / "r"), "--storage", url,
                   "--skip-data-figures"], out, user)
    assert report.returncode == 0, report.stderr
    assert name in (out / "r" / "index.html").read_text()
    _dashboard_serves(url, name, out, user)
    assert (sorted(os.listdir(db.parent)), db.read_bytes()) == before  # no -shm, -wal, .lock


def _dashboard_serves(url: str, name: str, cwd: Path, user: str | None) -> None:
    port = free_port()
    prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if user else []
    env = {**hwsearch_env(), "HOME": str(cwd), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "hwsearch", "dashboard", "--port",
                             str(port), "--storage", url], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 120, ""  # a hang guard
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=10) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()[1]
        assert name in body
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_every_reader_answers_from_a_read_only_mount(
    read_only_mount: Path, study_db: tuple[Path, str], open_dir: Path
) -> None:
    out = open_dir / "out"
    out.mkdir()
    _answers_every_reader(read_only_mount / "study.db", study_db[1], out)


def test_every_reader_answers_from_a_file_this_user_may_not_write(
    open_dir: Path, study_db: tuple[Path, str]
) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as another user needs root and setpriv")
    db_dir, out = open_dir / "db", open_dir / "out"
    db_dir.mkdir(mode=0o755)
    out.mkdir()
    os.chown(out, 65534, 65534)  # nobody's own output directory
    shutil.copy(study_db[0], db_dir / "study.db")
    (db_dir / "study.db").chmod(0o644)  # nobody reads it; only root writes it (or its dir)
    _answers_every_reader(db_dir / "study.db", study_db[1], out, user="nobody")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_reader_where_it_may_write_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    """Where the user may write, a reader still writes nothing (``query_only``), and closing
    it removes the write-ahead log's ``-wal`` and ``-shm`` files that opening made: the folder
    holds the same files with the same bytes after as before."""
    import optuna
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'study.db'}"
    writer = open_storage(url)
    optuna.create_study(study_name="mnist-highway-d2", storage=writer.optuna)
    writer.close()
    before = _files(tmp_path)
    reader = open_storage(url, create=False)
    try:
        assert reader.study_names() == ["mnist-highway-d2"]
        with pytest.raises(sa.exc.OperationalError, match="readonly"), \
                reader.optuna.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM studies"))
    finally:
        reader.close()
    assert _files(tmp_path) == before
