"""The Python API: the command line's use cases as functions with keyword arguments, returning
values and raising the typed errors whose messages name settings as ```name```."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hwsearch import api
from hwsearch.flags import render
from hwsearch.options import ConfigError
from hwsearch.storage import StorageError
from hwsearch.training import DataError


@pytest.fixture()
def small_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    study = optuna.create_study(study_name="mnist-highway-d10", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    return url


def test_the_read_use_cases_return_rows(small_db: str) -> None:
    (status,) = api.status(storage=small_db)
    assert status["study"] == "mnist-highway-d10" and status["complete"] == 3
    (best,) = api.best(storage=small_db)
    assert best["number"] is not None and set(best["params"]) == {"x"}
    assert [row["number"] for row in api.trials("mnist-highway-d10", storage=small_db)] == [
        0, 1, 2]


def test_a_missing_database_is_a_typed_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as e:
        api.status(storage=f"sqlite:///{tmp_path / 'typo.db'}")
    assert "(check `storage`)" in str(e.value)
    assert render(str(e.value)).endswith("(check --storage)")  # as the command line says it
    assert list(tmp_path.iterdir()) == []


def test_a_launch_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with pytest.raises(ConfigError, match="depth 0 out of range"):
        api.launch(storage=url, models="plain", depths="0")
    with pytest.raises(DataError, match="no `data_dir` for mnist"):
        api.launch(storage=url, models="plain", depths="2", trials=1)
    assert list(tmp_path.iterdir()) == []
