"""End to end on a local Ray: exact counts, idempotent resume, stored results, external clients.

Every launch is a real ``hwsearch launch`` process starting a real local Ray, writing to a real
SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from hwsearch.storage import open_storage
from hwsearch.storage.records import history
from hwsearch.storage.weights import load_trial_model
from hwtest import PG_PASSWORD, hwsearch_env, run_hwsearch, tiny_launch_args
from hwtest.launches import studies as _studies
from hwtest.secrets import SecretWatch

pytestmark = pytest.mark.slow


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own (short: Ray's socket paths), for Ray's session and Tune's
    experiment directory; removed after."""
    path = Path(tempfile.mkdtemp(prefix="hl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_search_exact_counts_resume_and_records(
    storage_url: str, prefix: str, mnist_dir: Path, tmp_path: Path, short_tmp: Path
) -> None:
    relative = os.path.relpath(mnist_dir, tmp_path)  # resolved by the launcher, not the workers
    args = tiny_launch_args(storage_url, relative, prefix, **{"--pack": "2"})
    env = hwsearch_env(TMPDIR=str(short_tmp))
    with SecretWatch(short_tmp, PG_PASSWORD) as watch:  # Ray's logs, Tune's directory
        first = run_hwsearch(*args, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert watch.hits == set()
    seen = {p.relative_to(short_tmp).parts[0] for p in watch.seen}
    assert any(part.startswith("hwsearch-tune-") for part in seen), seen  # it was looked at
    assert any(p.suffix in (".log", ".out", ".err") for p in watch.seen)
    assert "trials done" in first.stderr and "ETA" in first.stderr  # progress is shown
    studies = _studies(storage_url, prefix)
    assert sorted(studies) == [f"{prefix}mnist-highway-d2", f"{prefix}mnist-plain-d2"]
    # docs/cli.md: one line per study on stdout, `<study>: <finished>/<target> finished`.
    for name in studies:
        assert f"{name}: 3/3 finished" in first.stdout.splitlines(), first.stdout[-2000:]
    for study in studies.values():
        trials = study.get_trials()
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 3 and len(trials) == 3  # exact, and nothing failed
        for t in finished:
            history_ = history(t)
            assert len(history_) == 1 and set(history_[0]) >= {
                "train_loss",
                "train_accuracy",
                "test_accuracy",
                "lr",
                "seconds",
            }
            assert t.intermediate_values == {1: pytest.approx(history_[0]["train_loss"])}
            assert t.user_attrs["ray_node_ip"] == "127.0.0.1"
            assert t.user_attrs["ray_node_id"] and t.user_attrs["pack_size"] in (1, 2)
            if t.state == TrialState.COMPLETE:
                assert t.value == pytest.approx(min(h["train_loss"] for h in history_))
        assert ("gate_bias" in finished[0].params) == study.study_name.endswith("highway-d2")

    # The stored weights are the trained net: evaluating it reproduces the stored accuracy.
    store = open_storage(storage_url)
    study = studies[f"{prefix}mnist-highway-d2"]
    best = study.best_trial
    model = load_trial_model(store, best)
    from hwsearch.training.data import load_dataset

    data = load_dataset("mnist", str(mnist_dir))
    with torch.no_grad():
        acc = (model(data.x_test).argmax(1) == data.y_test).double().mean().item()
    assert acc == pytest.approx(best.user_attrs["test_accuracy"], abs=1e-6)
    assert all(h["test_accuracy"] is None for h in history(best))  # measured once, at the end
    store.close()

    again = run_hwsearch(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    for name, study in _studies(storage_url, prefix).items():
        assert len(study.get_trials()) == 3, name  # nothing added
        assert f"{name}: 3/3 finished" in again.stdout.splitlines(), again.stdout[-2000:]

    for out in (first, again):
        assert PG_PASSWORD not in out.stdout + out.stderr
    # Nor in any file the launches left in their working directory.
    left = SecretWatch(tmp_path, PG_PASSWORD)
    left.scan()
    assert left.hits == set()


def test_external_clients_agree_with_hwsearch_best(
    storage_url: str, mnist_dir: Path, tmp_path: Path
) -> None:
    # A fixed name (draws depend on seed, study name and trial number): both trials get small
    # learning rates and tanh, so both complete and the status line below is exact.
    prefix = "ext-"
    args = tiny_launch_args(
        storage_url, str(mnist_dir), prefix, **{"--models": "highway", "--trials": "2"}
    )
    assert run_hwsearch(*args, cwd=tmp_path).returncode == 0
    name = f"{prefix}mnist-highway-d2"
    ours = run_hwsearch("best", "--storage", storage_url, "--study", name, "--format", "json")
    assert ours.returncode == 0, ours.stderr
    (row,) = json.loads(ours.stdout)
    optuna_cli = [str(Path(sys.executable).with_name("optuna"))]  # the CLI users run
    env = hwsearch_env()
    listed = subprocess.run(
        [*optuna_cli, "studies", "--storage", storage_url, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    assert name in {s["name"] for s in json.loads(listed.stdout)}
    best = subprocess.run(
        [*optuna_cli, "best-trial", "--storage", storage_url, "--study-name", name, "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert best.returncode == 0, best.stderr
    theirs = json.loads(best.stdout)
    assert theirs["number"] == row["number"]
    assert theirs["value"] == pytest.approx(row["value"])
    assert theirs["params"] == pytest.approx(row["params"])

    report = run_hwsearch(
        "report",
        "--storage",
        storage_url,
        "--out",
        str(tmp_path / "r"),
        "--study",
        name,
        "--data-dir",
        str(mnist_dir),
    )
    assert report.returncode == 0, report.stderr[-2000:]
    html = (tmp_path / "r" / "index.html").read_text()
    assert name in html and "Plotly" in html

    status = run_hwsearch("status", "--storage", storage_url)
    line = next(x for x in status.stdout.splitlines() if x.startswith(name))
    assert line.split()[1:5] == ["2", "0", "0", "0"]  # complete, diverged, running, failed
    trials = run_hwsearch("trials", "--storage", storage_url, "--study", name, "--format", "csv")
    assert len(trials.stdout.strip().splitlines()) == 3  # header + 2 trials
