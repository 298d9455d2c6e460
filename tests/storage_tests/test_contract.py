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


def test_the_facade_refuses_to_be_pickled_and_says_what_to_pass(storage_url: str) -> None:
    store = open_storage(storage_url)
    with pytest.raises(TypeError, match="must not be pickled") as info:
        pickle.dumps(store)
    assert ".optuna storage" in str(info.value) and "\n" not in str(info.value)
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


# -- Optuna's own storage contract, against the retrying storage ------------------------------
# A representative subset of optuna.testing.pytest_storages.StorageTestCase (Optuna 5.0, the
# class Optuna's tests/storages_tests/test_storages.py runs against every storage): studies,
# trials, parameters, values, attributes, queries. Each test gets an empty database of its own.
# The whole suite is run by scripts/optuna-storage-suite (docs/reliability.md).

from optuna.testing.pytest_storages import StorageTestCase  # noqa: E402

from hwtest import pg_scratch, pg_url  # noqa: E402

CONTRACT = (
    "test_create_new_study", "test_create_new_study_with_name", "test_delete_study",
    "test_get_study_id_from_name_and_get_study_name_from_id", "test_set_and_get_study_directions",
    "test_set_and_get_study_user_attrs", "test_create_new_trial",
    "test_create_new_trial_with_template_trial", "test_set_trial_state_values_for_state",
    "test_set_trial_param", "test_set_trial_intermediate_value", "test_set_trial_user_attr",
    "test_get_all_trials_state_option", "test_get_best_trial", "test_check_trial_is_updatable",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path, pg_database: str):  # noqa: ANN201
    """The storage ``open_storage`` gives Optuna's API (``StudyStorage.optuna``), on an empty
    database of the test's own."""
    if request.param == "sqlite":
        store = open_storage(f"sqlite:///{tmp_path / 'contract.db'}")
        yield store.optuna
        store.close()
        return
    with pg_scratch(f"{pg_database}_{request.node.name[-40:].lower()}"[:63]) as name:
        store = open_storage(pg_url(name))
        yield store.optuna
        store.close()


class TestOptunaContract:
    pass


for _name in CONTRACT:
    setattr(TestOptunaContract, _name, getattr(StorageTestCase, _name))


def test_the_retrying_storage_pickles_without_its_password(
    pg_database: str, prefix: str
) -> None:
    """Pickled as multiprocessing, joblib or Ray pickle it, the storage carries no password;
    a process that unpickles it reads the password from its own environment (here
    HWSEARCH_STORAGE) and reads the study; one without it gets the URL without a password."""
    url = pg_url(pg_database)
    store = open_storage(url)
    study = optuna.create_study(study_name=f"{prefix}p", storage=store.optuna)
    study.set_user_attr("k", "v")
    blob = pickle.dumps(store.optuna)
    assert PG_PASSWORD.encode() not in blob
    assert PG_PASSWORD.encode() not in pickle.dumps(study)  # a Study, as joblib ships one
    read = textwrap.dedent(f"""
        import pickle, sys
        storage = pickle.loads(sys.stdin.buffer.read())
        print(storage.url.count({PG_PASSWORD!r}), end=" ")
        study = __import__("optuna").load_study(study_name={f"{prefix}p"!r}, storage=storage)
        print(study.user_attrs["k"])
    """)
    for env, seen in (({"HWSEARCH_STORAGE": url}, "1 v"), ({}, "0 v")):
        out = subprocess.run([sys.executable, "-c", read], input=blob, capture_output=True,
                             timeout=120, env={**_bare_env(), **env})
        assert out.stdout.decode().strip() == seen, out.stderr.decode()[-2000:]
    restored = pickle.loads(blob)  # this process: no HWSEARCH_STORAGE set by the suite
    assert restored.get_study_user_attrs(study._study_id) == {"k": "v"}
    assert restored.retry.budget == store.retry.budget
    store.close()


def _bare_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items()
            if not k.startswith(("HWSEARCH_STORAGE", "PGPASSWORD"))}
