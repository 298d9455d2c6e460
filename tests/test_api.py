"""The Python API: the command line's use cases as functions with keyword arguments, returning
typed records and frames and raising the typed errors whose messages name settings as
```name```; its docstrings' examples run here, and its answers agree with the command line's."""

from __future__ import annotations

import csv
import doctest
import io
import json
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import pandas
import pytest

import hwsearch
from hwsearch import api
from hwsearch.flags import render
from hwsearch.options import ConfigError
from hwsearch.storage import StorageError
from hwsearch.training import DataError
from hwsearch.training.data import Dataset
from hwtest import run_hwsearch
from hwtest.search_builder import Config, run_study

STUDIES = ("mnist-highway-d2", "mnist-plain-d2")


@pytest.fixture(scope="module")
def api_db(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Two tiny real studies (plain and highway, depth 2, two trials of one epoch each), with
    stored weights: what the docstrings' examples read."""
    import torch

    from hwsearch.storage import open_storage

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
    store = open_storage(url)
    for model in ("highway", "plain"):
        run_study(store, mnist, Config(model, 2, 2), epochs=1, limit_train=256, seed=3)
    store.close()
    torch.set_num_threads(threads)
    yield url


def _run_examples(names: set[str], globs: dict[str, Any]) -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(api, "api", globs=globs)
             if t.examples and t.name.split(".")[-1] in names]
    assert {t.name.split(".")[-1] for t in tests} == names
    out = io.StringIO()
    for test in tests:
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()


def test_the_docstrings_examples_run(api_db: str, tmp_path: Path, mnist_dir: Path) -> None:
    globs = {"hwsearch": hwsearch, "db": api_db, "tmp": tmp_path, "pandas": pandas,
             "data_dir": str(mnist_dir)}
    _run_examples({"api", "studies", "best", "trials", "load_model", "report"}, globs)


@pytest.mark.slow
def test_the_launch_example_runs(mnist_dir: Path, tmp_path: Path) -> None:
    globs = {"hwsearch": hwsearch, "db": f"sqlite:///{tmp_path / 'launch.db'}",
             "data_dir": str(mnist_dir)}
    _run_examples({"launch"}, globs)


def test_the_package_is_the_api() -> None:
    import hwsearch.report.figures  # noqa: F401 - the subpackage bound first: still callable

    assert hwsearch.report.figures is not None and callable(hwsearch.report)
    assert hwsearch.best is api.best and hwsearch.load_model is api.load_model
    with pytest.raises(AttributeError):
        hwsearch.no_such_function  # noqa: B018


def _cli(*args: str) -> str:
    done = run_hwsearch(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_best_agrees_with_the_command_line(api_db: str) -> None:
    cli = json.loads(_cli("best", "--storage", api_db, "--format", "json"))
    assert [asdict(b) for b in api.best(api_db)] == cli
    assert [b.study for b in api.best(api_db)] == list(STUDIES)
    status = json.loads(_cli("status", "--storage", api_db, "--format", "json"))
    assert [asdict(s) for s in api.studies(api_db)] == status


def test_trials_agree_with_the_command_line(api_db: str) -> None:
    for study in STUDIES:
        rows = list(csv.DictReader(io.StringIO(_cli("trials", "--storage", api_db, "--study",
                                                    study, "--format", "csv"))))
        for history in (True, False):
            frame = api.trials(api_db, study, history=history)
            assert len(frame) == len(rows) == 2
            for row, (_, mine) in zip(rows, frame.iterrows(), strict=True):
                assert int(row["number"]) == mine.number and row["state"] == mine.state
                assert row["outcome"] == mine.outcome and int(row["epochs"]) == mine.epochs
                assert math.isclose(float(row["value"]), mine.value, rel_tol=1e-5)
                assert math.isclose(float(row["test_accuracy"]), mine.test_accuracy,
                                    rel_tol=1e-5)
                params = {k.removeprefix("param_"): v for k, v in row.items()
                          if k.startswith("param_")}
                for name, text in params.items():
                    value = mine[f"params_{name}"]
                    assert text == value if isinstance(value, str) else math.isclose(
                        float(text), value, rel_tol=1e-5)
        assert len(frame.columns) == len(rows[0]) + 4 - (not history)


def test_a_misspelt_study_names_the_nearest(api_db: str) -> None:
    with pytest.raises(LookupError, match=r"\(did you mean 'mnist-plain-d2'\?\)"):
        api.best(api_db, "mnist-plian-d2")
    with pytest.raises(LookupError, match=r"\(did you mean 'mnist-plain-d2'\?\)"):
        api.load_model(api_db, "mnist-plain-d3")


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
    assert best.number is not None and set(best.params) == {"x"}
    assert list(api.trials(small_db, "mnist-highway-d10").number) == [0, 1, 2]


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


@pytest.mark.slow
def test_the_example_script_runs(mnist_dir: Path, tmp_path: Path) -> None:
    """docs/example.py, on a few hundred images: a search, its best trial, model and plot."""
    import subprocess
    import sys

    from hwtest import REPO, hwsearch_env

    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "example.py"), "--data-dir", str(mnist_dir),
         "--out", str(tmp_path), "--limit-train", "300"],
        capture_output=True, text=True, timeout=900, env=hwsearch_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "complete: True" in done.stdout
    assert (tmp_path / "history.html").stat().st_size > 100_000  # plotly inlined
