"""``hwsearch dashboard`` serves optuna-dashboard on our storage: on localhost by default, from
its own process (a signal stops it and frees the port), read-only unless ``--allow-writes``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest

from hwtest import REPO, foreign_study, free_port, hwsearch_env


def _port_free(port: int) -> bool:
    """Nothing listens there and a server may listen again (SO_REUSEADDR, as servers do: the
    test's own closed connections linger in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                               text=True).stdout
    return listening.strip() == ""


def _request(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=None)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _start(url: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsearch", "dashboard", "--storage", url, "--port", str(port),
         *extra],
        cwd=REPO,
        env=hwsearch_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120  # a hang guard: the server starts in seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            if _request(port, "/api/studies")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("dashboard did not answer within 120 s")


def _studies(port: int) -> list[str]:
    status, body = _request(port, "/api/studies")
    assert status == 200
    return [s["study_name"] for s in json.loads(body)["study_summaries"]]


@pytest.fixture
def two_trials(tmp_path: Path) -> str:
    return foreign_study(f"sqlite:///{tmp_path / 'd.db'}", "mnist-highway-d10", trials=2)


def _upload_weights(url: str) -> str:
    """An artifact in our store (the table beside Optuna's), attached to the study (a finished
    trial takes none; the launcher attaches weights before it finishes a trial)."""
    from hwsearch.storage import open_storage

    store = open_storage(url)
    try:
        study = optuna.load_study(study_name="mnist-highway-d10", storage=store.optuna)
        path = Path(url.removeprefix("sqlite:///")).with_name("weights.pt")
        path.write_bytes(b"weights")
        return optuna.artifacts.upload_artifact(
            artifact_store=store.artifacts, file_path=str(path), study_or_trial=study,
            storage=store.optuna,
        )
    finally:
        store.close()


def test_read_only_on_loopback_and_sigterm_frees_the_port(two_trials: str) -> None:
    artifact_id = _upload_weights(two_trials)
    port = free_port()
    proc = _start(two_trials, port)
    try:
        assert _studies(port) == ["mnist-highway-d10"]
        assert json.loads(_request(port, "/api/meta")[1])["artifact_is_available"]
        assert _request(port, f"/artifacts/1/{artifact_id}") == (200, b"weights")
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout.split()
        assert listening[3] == f"127.0.0.1:{port}"  # local address column: loopback only
        # The server is this process, not a child that would outlive it.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children == []
        for method, path in (
            ("DELETE", "/api/studies/1"),
            ("POST", "/api/studies/1/rename"),
            ("POST", "/api/studies"),
            ("POST", "/api/trials/1/tell"),
            ("PUT", "/api/studies/1/note"),
        ):
            status, body = _request(port, path, method)
            assert status == 403, (method, path, status)
            assert b"--allow-writes" in body
        assert _studies(port) == ["mnist-highway-d10"]
        assert len(optuna.load_study(study_name="mnist-highway-d10",
                                     storage=two_trials).trials) == 2
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=120)
    assert code == 128 + signal.SIGTERM
    assert _port_free(port)


def test_allow_writes_lets_a_delete_through(two_trials: str) -> None:
    port = free_port()
    proc = _start(two_trials, port, "--allow-writes")
    try:
        status, _ = _request(port, "/api/studies/1", "DELETE")
        assert status == 204
        assert _studies(port) == []
    finally:
        os.kill(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=120)
    assert code == 130
    assert _port_free(port)


def test_loopback_hosts() -> None:
    from hwsearch.app.dashboard import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert not is_loopback("example.org")


def test_a_public_host_warns(two_trials: str) -> None:
    port = free_port()
    proc = _start(two_trials, port, "--host", "0.0.0.0")
    try:
        assert _studies(port) == ["mnist-highway-d10"]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    err = proc.stderr.read().decode()
    assert "warning" in err and "0.0.0.0" in err and "read-only" in err


def test_a_missing_database_is_an_error_and_stays_missing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "hwsearch", "dashboard", "--storage", url, "--port", "1"],
        cwd=REPO, env=hwsearch_env(), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "typo.db" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_server_database_gets_optunas_tables(pg_database: str) -> None:
    """The compose stack starts the dashboard before any launch: on an empty PostgreSQL
    database it makes Optuna's tables (and answers), where a missing SQLite file is refused."""
    import sqlalchemy as sa

    from hwtest import pg_scratch

    with pg_scratch(f"{pg_database}_dash") as name:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"  # trust auth: no password
        port = free_port()
        proc = _start(url, port)
        try:
            assert _studies(port) == []
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert {"studies", "trials", "version_info"} <= set(sa.inspect(conn).get_table_names())
        engine.dispose()


def test_weights_in_an_artifact_directory_are_the_trials_artifacts(tmp_path: Path) -> None:
    """A study launched with an artifact directory: the dashboard lists the kept trial's
    weights as its artifact (Optuna's own metadata) and serves the file, with no flag."""
    from hwsearch.storage import open_storage
    from hwsearch.storage import records as rec
    from hwsearch.storage.artifacts import ARTIFACT_DIR
    from hwsearch.storage.keep import KeepPolicy, WeightKeeper

    url = foreign_study(f"sqlite:///{tmp_path / 'd.db'}", "mnist-highway-d10", trials=0)
    where = tmp_path / "volume"
    where.mkdir()
    store = open_storage(url)
    try:
        study = optuna.load_study(study_name="mnist-highway-d10", storage=store.optuna)
        study.set_user_attr(ARTIFACT_DIR, str(where))
        trial_id = store.optuna.create_new_trial(store.study_id(study.study_name))
        assert WeightKeeper(store, KeepPolicy(1)).finish(
            study.study_name, trial_id, 0.5, b"the weights",
            lambda then: rec.mark_completed(store, trial_id, 0.5, then))
    finally:
        store.close()
    (artifact_id,) = os.listdir(where)
    port = free_port()
    proc = _start(url, port)
    try:
        status, body = _request(port, "/api/studies/1?after=0")
        assert status == 200
        (trial,) = json.loads(body)["trials"]
        assert [(a["artifact_id"], a["filename"]) for a in trial["artifacts"]] == [
            (artifact_id, rec.WEIGHTS_FILE)]
        assert _request(port, f"/artifacts/1/{trial['trial_id']}/{artifact_id}") == (
            200, b"the weights")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
