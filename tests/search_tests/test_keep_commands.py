"""The weights' commands and flags through the command line: ``prune-weights`` (a dry run says
what it frees and changes nothing; the real one frees it and compacts a SQLite file), an export
of a trial without weights refused in one line naming the trials with weights, and the
launch's ``--keep-weights`` and ``--artifacts`` refused in one line before anything starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import optuna
import pytest

from hwsearch.cli import main
from hwsearch.storage import open_storage
from hwsearch.storage import records as rec
from hwsearch.storage.keep import KeepPolicy, WeightKeeper, kept_numbers

MB = 1_000_000


def full_db(url: str, name: str = "s1") -> None:
    """A study whose six trials all kept 1 MB of weights (``keep_weights all``)."""
    store = open_storage(url)
    optuna.create_study(study_name=name, storage=store.optuna)
    keeper = WeightKeeper(store, KeepPolicy(None))
    for v in (0.5, 0.1, 0.4, 0.2, 0.3, 0.6):
        trial_id = store.optuna.create_new_trial(store.study_id(name))
        keeper.finish(name, trial_id, v, bytes([trial_id % 256]) * MB,
                      lambda then, t=trial_id, v=v: rec.mark_completed(store, t, v, then))
    store.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prune_dry_run_then_prune_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    db = tmp_path / "grid.db"
    url = f"sqlite:///{db}"
    full_db(url)
    before = digest(db)
    assert main(["prune-weights", "--keep", "top:2", "--dry-run", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "s1: keeps 2, would drop 4 (4.0 MB)" in out
    assert digest(db) == before  # a dry run reads only
    size = db.stat().st_size
    assert main(["prune-weights", "--keep", "top:2", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "s1: keeps 2, dropped 4 (4.0 MB)" in out and "(compacted)" in out
    assert db.stat().st_size < size - 3.5 * MB  # VACUUM gave the pages back
    store = open_storage(url, create=False)
    assert kept_numbers(store, "s1") == [1, 3]
    assert len(store.optuna.get_all_trials(store.study_id("s1"))) == 6  # trials all stay
    store.close()


def test_export_of_a_trial_without_weights_names_those_with(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'db.db'}"
    full_db(url)
    assert main(["prune-weights", "--keep", "top:2", "--storage", url]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["export", "--study", "s1", "--trial", "0", "--out", str(tmp_path / "m.pt2"),
              "--storage", url])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hwsearch: error: trial 0 of 's1' is COMPLETE without stored weights; "
                   "trials with weights: 1, 3"]
    assert not (tmp_path / "m.pt2").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["prune-weights", "--keep", "top:0"],
     "bad --keep 'top:0'; allowed: top:N (N >= 1), all, none"),
    (["prune-weights", "--keep", "top:2", "--study", "nope"], "no study 'nope'"),
    (["launch", "--keep-weights", "best"],
     "bad --keep-weights 'best'; allowed: top:N (N >= 1), all, none"),
    (["launch", "--artifacts", "NOWHERE"], "--artifacts NOWHERE is not an existing directory"),
])
def test_bad_values_are_one_line_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list, message: str
) -> None:
    db = tmp_path / "db.db"
    url = f"sqlite:///{db}"
    full_db(url)
    before = digest(db)
    argv = [a.replace("NOWHERE", str(tmp_path / "nowhere")) for a in argv]
    message = message.replace("NOWHERE", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as e:
        main([*argv, "--storage", url])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert digest(db) == before


def test_prune_refuses_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture
                                          ) -> None:
    with pytest.raises(SystemExit) as e:
        main(["prune-weights", "--keep", "top:1", "--storage",
              f"sqlite:///{tmp_path / 'typo.db'}"])
    assert e.value.code == 2
    assert "prune-weights changes only an existing one" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.slow
def test_a_launch_keeps_its_best_weights_in_an_artifact_directory(
    storage_url: str, prefix: str, mnist_dir: Path, tmp_path: Path
) -> None:
    """A real launch with ``--artifacts`` and ``--keep-weights top:1`` (SQLite and
    PostgreSQL): one file per study, in the directory the study records; a read-only open
    rebuilds each study's best net from it, with no flag."""
    import shutil
    import tempfile

    from hwsearch.storage.artifacts import ARTIFACT_DIR
    from hwsearch.storage.weights import load_trial_model
    from hwtest import hwsearch_env, run_hwsearch, tiny_launch_args
    from hwtest.launches import studies

    where = tmp_path / "volume"
    where.mkdir()
    short = Path(tempfile.mkdtemp(prefix="hk-", dir="/tmp"))  # Ray's socket paths are short
    try:
        args = tiny_launch_args(storage_url, str(mnist_dir), prefix, **{
            "--artifacts": str(where), "--keep-weights": "top:1", "--pack": "3"})
        run = run_hwsearch(*args, cwd=tmp_path, env=hwsearch_env(TMPDIR=str(short)))
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    found = studies(storage_url, prefix)
    assert len(found) == 2 and len(list(where.iterdir())) == 2
    store = open_storage(storage_url, create=False)
    try:
        for name, study in found.items():
            assert study.user_attrs[ARTIFACT_DIR] == str(where.resolve())
            assert kept_numbers(store, name) == [study.best_trial.number]
            assert load_trial_model(store, study.best_trial) is not None
            assert len(study.trials) == 3  # the others stay, without weights
    finally:
        store.close()


def test_the_config_file_sets_the_policy_and_the_directory(tmp_path: Path) -> None:
    from hwsearch.app.launch import launch_settings
    from hwsearch.options import ConfigError

    config = tmp_path / "launch.toml"
    config.write_text('keep-weights = "top:3"\nartifacts = "/shared/weights"\n')
    settings = launch_settings({}, str(config))
    assert (settings.keep_weights, settings.artifacts) == ("top:3", "/shared/weights")
    assert launch_settings({"keep_weights": "all"}, str(config)).keep_weights == "all"  # flag wins
    assert launch_settings({}).keep_weights == "top:5"  # the default
    config.write_text('keep_weights = "top:x"\n')
    with pytest.raises(ConfigError, match=r"bad `keep_weights` 'top:x'"):
        launch_settings({}, str(config))
