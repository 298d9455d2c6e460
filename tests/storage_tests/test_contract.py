"""The storage contract, run against SQLite and the real PostgreSQL alike."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import textwrap
import warnings

import optuna
import pytest
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

from hwsearch.storage import StorageError, mask_url, open_storage
from hwtest import PG_PASSWORD
from hwtest.heartbeats import backdate_beat

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_display_url_hides_password(storage_url: str) -> None:
    store = open_storage(storage_url)
    assert PG_PASSWORD not in store.display_url
    if storage_url.startswith("postgresql"):
        assert "***" in store.display_url
    store.close()


def test_studies_round_trip_in_optuna_schema(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    study = optuna.create_study(study_name=f"{prefix}s", storage=store.optuna)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.report(0.5, 1)
    study.tell(trial, 0.25)
    assert f"{prefix}s" in store.study_names()
    store.close()
    # A plain Optuna storage on the same URL (what the optuna CLI and dashboard use) reads it.
    again = optuna.load_study(study_name=f"{prefix}s", storage=storage_url)
    assert again.best_value == 0.25
    assert again.trials[0].intermediate_values == {1: 0.5}


def test_artifacts_round_trip_and_missing(storage_url: str) -> None:
    store = open_storage(storage_url)
    store.artifacts.write("a1", io.BytesIO(b"\x00weights\xff" * 1000))
    assert store.artifacts.open_reader("a1").read() == b"\x00weights\xff" * 1000
    store.artifacts.write("a1", io.BytesIO(b"new"))  # overwrite keeps one copy
    assert store.artifacts.open_reader("a1").read() == b"new"
    store.artifacts.remove("a1")
    with pytest.raises(ArtifactNotFound):
        store.artifacts.open_reader("a1")
    with pytest.raises(ArtifactNotFound):
        store.artifacts.remove("a1")
    store.close()


def test_claim_excludes_other_processes(storage_url: str, prefix: str) -> None:
    """While we hold a study's claim, another process cannot take it (but can take another
    study's); after, it can."""
    probe = textwrap.dedent(f"""
        import sys, threading, time
        from hwsearch.storage import open_storage
        store = open_storage({storage_url!r})
        got = threading.Event()
        def take():
            with store.claim(sys.argv[2]):
                got.set()
        threading.Thread(target=take, daemon=True).start()
        print("taken" if got.wait(float(sys.argv[1])) else "blocked", flush=True)
    """)
    def probe_run(wait: str, study: str) -> str:
        out = subprocess.run([sys.executable, "-c", probe, wait, study], capture_output=True,
                             text=True, timeout=120)
        return out.stdout.strip() or out.stderr[-500:]

    store = open_storage(storage_url)
    with store.claim(f"{prefix}c"):
        assert probe_run("3", f"{prefix}c") == "blocked"
        assert probe_run("120", f"{prefix}d") == "taken"  # other studies are not held up
    assert probe_run("120", f"{prefix}c") == "taken"
    store.close()


def test_stale_trials_fail_only_after_grace(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    study = optuna.create_study(study_name=f"{prefix}h", storage=store.optuna)
    live, dead = study.ask(), study.ask()
    live_id, dead_id = (store.trial_id(f"{prefix}h", t.number) for t in (live, dead))
    store.record_heartbeat(dead_id)
    backdate_beat(store.optuna.engine, dead_id, 40)  # grace period: 3 beats of 10 s
    store.record_heartbeat(live_id)
    assert store.fail_stale(f"{prefix}h", default_interval=10) == 1
    trials = {t.number: t for t in study.get_trials()}
    assert trials[live.number].state == TrialState.RUNNING
    assert trials[dead.number].state == TrialState.FAIL
    assert "heartbeat" in trials[dead.number].user_attrs["outcome"]
    store.close()


def test_storage_refuses_to_be_pickled(storage_url: str) -> None:
    store = open_storage(storage_url)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(store)
    store.close()


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:hunter2@localhost/db", "unsupported storage dialect 'mysql'"),
        ("postgresql+psycopg://u:hunter2@127.0.0.1:1/db", "cannot open storage"),
        ("not a url", "malformed storage URL"),
        ("sqlite:////nonexistent-dir/x.db", "does not exist"),
    ],
)
def test_bad_urls_are_one_line_errors_without_password(url: str, message: str) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(url)
    text = str(info.value)
    assert message in text
    assert "hunter2" not in text and "\n" not in text


def test_mask_url() -> None:
    assert (
        mask_url("postgresql+psycopg://me:pw@h:5432/db") == "postgresql+psycopg://me:***@h:5432/db"
    )
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path) -> None:
    import sqlalchemy as sa

    from hwsearch.storage import engine_kwargs

    url = f"sqlite:///{tmp_path / 'w.db'}"
    open_storage(url).close()
    with sa.create_engine(url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"  # persists in file
    assert engine_kwargs(url)["connect_args"]["timeout"] >= 30
    assert engine_kwargs("postgresql+psycopg://h/db") == {"pool_pre_ping": True}


def test_concurrent_first_opens_of_a_new_database(tmp_path, pg_database) -> None:
    """Launchers started together on an empty database must not trip over each other's
    CREATE TABLE (PostgreSQL rejects the second with a duplicate-key error)."""
    from hwtest import pg_scratch, pg_url

    with pg_scratch(f"{pg_database}_fresh") as name:
        code = f"from hwsearch.storage import open_storage; open_storage({pg_url(name)!r}).close()"
        procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
