"""Weights kept by policy (``storage/keep.py``), in the database or an artifact directory, and
pruned from an existing database (``storage/prune.py``), on SQLite and PostgreSQL: only the N
best trials of a study keep weights, in Optuna's own artifact format; two launchers finishing
trials of one study at once never keep more than N and never lose the best."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from hwsearch.options import ConfigError
from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage import records as rec
from hwsearch.storage import schema as s
from hwsearch.storage.artifacts import ARTIFACT_DIR, ARTIFACTS
from hwsearch.storage.keep import KeepPolicy, WeightKeeper, kept_numbers
from hwsearch.storage.prune import compact, prune

N = 3


@pytest.fixture
def store(storage_url: str) -> Iterator[StudyStorage]:
    store = open_storage(storage_url)
    yield store
    store.close()


def new_study(store: StudyStorage, artifact_dir: Path | None = None) -> str:
    name = f"keep-{uuid.uuid4().hex[:8]}"
    BASELINE[id(store.optuna.engine.url)] = all_blobs(store)
    study = optuna.create_study(study_name=name, storage=store.optuna)
    if artifact_dir is not None:
        study.set_user_attr(ARTIFACT_DIR, str(artifact_dir))
    return name


def blob_of(number: int) -> bytes:
    return f"weights of trial {number} ".encode() * 100


def finish(store: StudyStorage, keeper: WeightKeeper, name: str, value: float) -> int:
    """A new trial of ``name``, completed with ``value`` through the keeper; its number."""
    trial_id = store.optuna.create_new_trial(store.study_id(name))
    number = store.optuna.get_trial(trial_id).number
    assert keeper.finish(name, trial_id, value, blob_of(number), lambda then: (
        rec.mark_completed(store, trial_id, value, then)))
    return number


def best_numbers(store: StudyStorage, name: str, n: int) -> list[int]:
    done = [t for t in store.optuna.get_all_trials(store.study_id(name)) if t.value is not None]
    return [t.number for t in sorted(done, key=lambda t: (t.value, t.number))[:n]]


BASELINE: dict[int, int] = {}  # blobs other tests left in a shared PostgreSQL database


def all_blobs(store: StudyStorage) -> int:
    return store.database.read("count", lambda conn: conn.execute(
        sa.select(sa.func.count()).select_from(ARTIFACTS)).scalar_one())


def stored_blobs(store: StudyStorage) -> int:
    """Blobs in the database's table since this test made its study."""
    return all_blobs(store) - BASELINE[id(store.optuna.engine.url)]


def test_policy_is_top_n_all_or_none_and_anything_else_one_line() -> None:
    assert [KeepPolicy.parse(t).top for t in ("top:5", "all", "none", " TOP:1 ")] == [
        5, None, 0, 1]
    assert str(KeepPolicy.parse("top:7")) == "top:7"
    for bad in ("top:0", "top:", "top:-1", "best:3", "5", ""):
        with pytest.raises(ConfigError) as e:
            KeepPolicy.parse(bad, name="keep")
        assert str(e.value) == f"bad `keep` {bad!r}; allowed: top:N (N >= 1), all, none"


def test_only_the_n_best_keep_weights_in_optunas_own_format(store: StudyStorage) -> None:
    """A better trial is admitted and the worst kept one dropped in the same transaction:
    its record and its bytes; what stays reads back through Optuna's artifact API."""
    name = new_study(store)
    keeper = WeightKeeper(store, KeepPolicy(N))
    values = [0.5, 0.9, 0.3, 0.95, 0.1, 0.7, 0.2]
    numbers = [finish(store, keeper, name, v) for v in values]
    assert kept_numbers(store, name) == best_numbers(store, name, N) == [
        numbers[4], numbers[6], numbers[2]]
    assert stored_blobs(store) == N
    for trial in store.optuna.get_all_trials(store.study_id(name)):
        metas = optuna.artifacts.get_all_artifact_meta(trial, storage=store.optuna)
        if trial.number in kept_numbers(store, name):
            (meta,) = metas
            assert (meta.filename, meta.mimetype) == (rec.WEIGHTS_FILE,
                                                      "application/octet-stream")
            with store.artifacts.open_reader(meta.artifact_id) as f:
                assert f.read() == blob_of(trial.number)
        else:
            assert metas == []  # still a complete trial with its value, without weights
            assert trial.state.name == "COMPLETE" and trial.value is not None


@pytest.mark.parametrize(("policy", "kept"), [("all", 4), ("none", 0)])
def test_all_keeps_every_trial_and_none_keeps_none(store: StudyStorage, policy: str,
                                                  kept: int) -> None:
    name = new_study(store)
    keeper = WeightKeeper(store, KeepPolicy.parse(policy))
    for v in (0.4, 0.3, 0.2, 0.1):
        finish(store, keeper, name, v)
    assert len(kept_numbers(store, name)) == kept == stored_blobs(store)


WRITER = """
import os, random, sys
from hwsearch.storage import open_storage, records as rec
from hwsearch.storage.keep import KeepPolicy, WeightKeeper
store = open_storage(os.environ["HWSEARCH_STORAGE"])
name, seed, count, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keeper = WeightKeeper(store, KeepPolicy(top))
rng = random.Random(seed)
for _ in range(count):
    trial_id = store.optuna.create_new_trial(store.study_id(name))
    value = rng.random()
    assert keeper.finish(name, trial_id, value, os.urandom(20_000),
                         lambda then: rec.mark_completed(store, trial_id, value, then))
store.close()
"""


@pytest.mark.parametrize("in_directory", [False, True], ids=["database", "directory"])
def test_two_concurrent_launchers_keep_exactly_the_n_best(
    store: StudyStorage, storage_url: str, tmp_path: Path, in_directory: bool
) -> None:
    """Two processes finish trials of one study at once; a third watches. No snapshot ever
    shows more than N kept, and at the end the kept ones are the N best of all."""
    where = tmp_path / "artifacts" if in_directory else None
    if where is not None:
        where.mkdir()
    name = new_study(store, where)
    env = {**os.environ, "HWSEARCH_STORAGE": storage_url}  # the password stays off argv
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(seed), "25", str(N)],
                                env=env) for seed in (1, 2)]
    seen = 0
    while any(w.poll() is None for w in writers):
        seen = max(seen, len(kept_numbers(store, name)))
        time.sleep(0.01)
    assert [w.returncode for w in writers] == [0, 0]
    assert seen <= N
    assert len(store.optuna.get_all_trials(store.study_id(name))) == 50
    assert kept_numbers(store, name) == best_numbers(store, name, N)
    if where is None:
        assert stored_blobs(store) == N
    else:
        assert stored_blobs(store) == 0 and len(list(where.iterdir())) == N


def test_an_artifact_directory_holds_the_files_and_readers_find_them(
    storage_url: str, tmp_path: Path
) -> None:
    """The study records the directory; a read-only open finds the weights through it, and
    says where it looked when the directory is gone."""
    where = tmp_path / "shared-volume"
    where.mkdir()
    with_store = open_storage(storage_url)
    name = new_study(with_store, where)
    keeper = WeightKeeper(with_store, KeepPolicy(2))
    numbers = [finish(with_store, keeper, name, v) for v in (0.3, 0.2, 0.1)]
    with_store.close()
    assert sorted(os.listdir(where)) and len(os.listdir(where)) == 2
    reader = open_storage(storage_url, create=False)
    try:
        trial = reader.optuna.get_trial(reader.trial_id(name, numbers[2]))
        (meta,) = optuna.artifacts.get_all_artifact_meta(trial, storage=reader.optuna)
        assert (where / meta.artifact_id).is_file()
        with reader.artifacts.open_reader(meta.artifact_id) as f:
            assert f.read() == blob_of(numbers[2])
        where.rename(tmp_path / "unmounted")
        with pytest.raises(optuna.artifacts.exceptions.ArtifactNotFound, match=str(where)):
            reader.artifacts.open_reader(meta.artifact_id)
    finally:
        reader.close()


def test_prune_dry_run_says_what_it_frees_then_prune_frees_it(storage_url: str,
                                                              tmp_path: Path) -> None:
    store = open_storage(storage_url)
    name = new_study(store)
    keeper = WeightKeeper(store, KeepPolicy(None))
    numbers = [finish(store, keeper, name, v) for v in (0.5, 0.1, 0.4, 0.2, 0.3)]
    would = prune(store, name, KeepPolicy(2), dry_run=True)
    assert (would.kept, would.dropped) == (2, 3)
    assert would.bytes == sum(len(blob_of(n)) for n in (numbers[0], numbers[2], numbers[4]))
    assert len(kept_numbers(store, name)) == 5 == stored_blobs(store)  # nothing changed
    done = prune(store, name, KeepPolicy(2))
    assert done == would
    assert kept_numbers(store, name) == [numbers[1], numbers[3]] and stored_blobs(store) == 2
    compact(store)  # SQLite: VACUUM; a server: nothing to do
    store.close()


def test_prune_of_a_directory_study_removes_the_files(storage_url: str,
                                                      tmp_path: Path) -> None:
    store = open_storage(storage_url)
    where = tmp_path / "a"
    where.mkdir()
    name = new_study(store, where)
    keeper = WeightKeeper(store, KeepPolicy(None))
    for v in (0.3, 0.2, 0.1):
        finish(store, keeper, name, v)
    result = prune(store, name, KeepPolicy(1))
    assert (result.dropped, result.bytes > 0) == (2, True)
    assert len(os.listdir(where)) == 1 and len(kept_numbers(store, name)) == 1
    store.close()


def test_the_weights_attribute_key_is_optunas() -> None:
    """What keep.py writes is what Optuna's upload_artifact writes: compare with a real one."""
    storage = optuna.storages.RDBStorage("sqlite:///:memory:")
    study = optuna.create_study(storage=storage)
    trial = study.ask()

    class Sink:
        def write(self, artifact_id: str, body: object) -> None: ...

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{uuid.uuid4().hex}-{rec.WEIGHTS_FILE}"
    path.write_bytes(b"x")
    try:
        optuna.artifacts.upload_artifact(artifact_store=Sink(), file_path=str(path),
                                         study_or_trial=trial, storage=storage,
                                         mimetype="application/octet-stream")
    finally:
        path.unlink()
    ((key, value),) = storage.get_trial_system_attrs(trial._trial_id).items()
    assert key.startswith(s.ARTIFACT_PREFIX)
    assert set(json.loads(value)) == {"artifact_id", "filename", "mimetype", "encoding"}


def test_kept_ranks_valueless_trials_last() -> None:
    from hwsearch.storage.keep import Kept

    rows = [Kept(1, 0, None, "a", "k"), Kept(2, 1, 0.5, "b", "k"), Kept(3, 2, 0.5, "c", "k")]
    assert [k.number for k in sorted(rows, key=lambda k: k.rank)] == [1, 2, 0]
