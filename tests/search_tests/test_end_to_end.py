"""One real small search, from launch to report to export, as a user runs it (``hwsearch``
subprocesses on a local Ray, real MNIST, SQLite): the report's table and figures hold that
search's trials and the exported model is the one whose objective was stored. The read
commands on the finished database change nothing in it.

Every assertion compares what a command wrote with what the study holds, so a report or an
export that drew from the wrong trial, epoch, example or study fails here even when each
piece passes its own unit tests.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from optuna.trial import FrozenTrial, TrialState

from hwsearch.storage import open_storage
from hwsearch.storage.records import history
from hwtest import run_hwsearch, tiny_launch_args
from hwtest.launches import FINISHED, studies
from hwtest.report_page import ReportPage

pytestmark = pytest.mark.slow

PREFIX, SEED, LIMIT, EPOCHS, TRIALS = "e2e-", 3, 300, 3, 4
HIGHWAY, PLAIN = f"{PREFIX}mnist-highway-d3", f"{PREFIX}mnist-plain-d3"


class Launched(NamedTuple):
    url: str
    db: Path
    data_dir: str
    page: ReportPage
    studies: dict[str, list[FrozenTrial]]


def _fingerprint(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` and a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def launched(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Launched:
    """A launch of plain and highway nets at depth 3 (4 trials each, 3 epochs on the first 300
    training images, packs of 4), then ``hwsearch report`` on it."""
    work = tmp_path_factory.mktemp("e2e")
    db = work / "db" / "e2e.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    args = tiny_launch_args(url, str(mnist_dir), PREFIX, **{
        "--depths": "3", "--trials": str(TRIALS), "--epochs": str(EPOCHS),
        "--limit-train": str(LIMIT), "--batch-size": "50", "--pack": "4", "--seed": "1"})
    launch = run_hwsearch(*args, cwd=work)
    assert launch.returncode == 0, launch.stderr[-3000:]
    report = run_hwsearch("report", "--storage", url, "--out", str(work / "report"),
                          "--data-dir", str(mnist_dir), "--seed", str(SEED), cwd=work)
    assert report.returncode == 0, report.stderr[-3000:]
    found = {name: study.get_trials() for name, study in studies(url, PREFIX).items()}
    assert sorted(found) == [HIGHWAY, PLAIN]
    return Launched(url, db, str(mnist_dir), ReportPage(work / "report" / "index.html"), found)


def _best(trials: list[FrozenTrial]) -> FrozenTrial:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return min(done, key=lambda t: (t.value, t.number))


def _model(launched: Launched, name: str, trial: FrozenTrial) -> torch.nn.Module:
    from hwsearch.storage.weights import load_trial_model

    store = open_storage(launched.url, create=False)
    try:
        return load_trial_model(store, trial).eval()
    finally:
        store.close()


def _examples(launched: Launched):  # noqa: ANN202
    from hwsearch.report.nets import training_examples
    from hwsearch.training.data import load_dataset

    data = load_dataset("mnist", launched.data_dir)
    return training_examples(data.x_train, data.y_train, LIMIT, SEED)


def test_the_launch_made_exactly_its_trials(launched: Launched) -> None:
    for name, trials in launched.studies.items():
        assert len(trials) == TRIALS, name
        assert all(t.state in FINISHED for t in trials)
        assert any(t.state == TrialState.COMPLETE for t in trials), name


def test_the_summary_names_each_studys_best_trial(launched: Launched) -> None:
    summary = launched.page.summary()
    assert set(summary) == set(launched.studies)
    for name, trials in launched.studies.items():
        row, best = summary[name], _best(trials)
        assert int(row["Best trial"]) == best.number
        assert float(row["Best training CE"]) == pytest.approx(best.value, rel=1e-3)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        assert int(row["Complete"]) == complete
        assert (row["Epochs"], row["Train examples"]) == (str(EPOCHS), str(LIMIT))


def test_figure1_draws_the_best_trials_stored_curves(launched: Launched) -> None:
    traces = launched.page.panels("figure1")
    for model, name in (("plain", PLAIN), ("highway", HIGHWAY)):
        best = _best(launched.studies[name])
        curve = history(best)
        trace = traces[model]
        assert list(trace["x"]) == [r["epoch"] for r in curve] == list(range(1, EPOCHS + 1))
        np.testing.assert_allclose(np.asarray(trace["y"], dtype=float),
                                   [r["train_loss"] for r in curve], rtol=1e-12)
        assert min(trace["y"]) == pytest.approx(best.value, rel=1e-12)


def test_figure2_and_the_lesioning_are_the_best_highway_nets(launched: Launched) -> None:
    """Figure 2's net is the highway study's best trial's stored net, its examples those the
    page names (seed 3, from the 300 the trials trained on); the lesioning the same net's."""
    from hwsearch.report.nets import lesion_data

    best = _best(launched.studies[HIGHWAY])
    model = _model(launched, HIGHWAY, best)
    ex = _examples(launched)
    assert len(ex.x) == LIMIT
    internals = model.internals(ex.sample)
    panels = launched.page.panels("figure2")
    wanted = {"Gate biases": np.stack([layer.t.bias.detach().numpy() for layer in model.layers]),
              "Mean gate T": model.internals(ex.x).gates.double().mean(1).numpy(),
              "Gate T, example": internals.gates[:, 0].numpy(),
              "Block outputs y": internals.outputs[:, 0].numpy(),
              "Extra: states H(x)": internals.states[:, 0].numpy()}
    assert len(panels) == len(wanted)
    for title, want in wanted.items():
        (name,) = [n for n in panels if n.startswith(title)]
        np.testing.assert_allclose(np.asarray(panels[name]["z"], dtype=float), want,
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    assert f"#{ex.sample_index}" in [n for n in panels if n.startswith("Gate T")][0]
    assert f"trial {best.number} of {HIGHWAY}" in launched.page.text
    lesion = launched.page.figure("lesion")["data"][0]
    expected = lesion_data(model, ex.x, ex.y)
    assert list(lesion["x"]) == expected.layers == [2, 3]
    np.testing.assert_allclose(np.asarray(lesion["y"], dtype=float), expected.losses, rtol=1e-6)


def test_the_diagnostics_plot_every_studys_own_trials(launched: Launched) -> None:
    figures = launched.page.figures()
    for i, name in enumerate(sorted(launched.studies, key=lambda n: ("plain" in n, n))):
        trials = launched.studies[name]
        complete = sorted((t for t in trials if t.state == TrialState.COMPLETE),
                          key=lambda t: t.number)
        key = f"{i}-{name}"
        lr = figures[f"slices-{key}"]["data"][0]  # the first panel: lr, one point per trial
        assert list(lr["customdata"]) == [t.number for t in complete]
        np.testing.assert_allclose(np.asarray(lr["x"], dtype=float),
                                   [t.params["lr"] for t in complete], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(lr["y"], dtype=float),
                                   [t.value for t in complete], rtol=1e-12)
        ecdf = figures[f"ecdf-{key}"]["data"][0]
        finals = sorted(history(t)[-1]["train_loss"] for t in complete)
        np.testing.assert_allclose(np.asarray(ecdf["x"], dtype=float)[1:], finals, rtol=1e-12)


def test_the_export_is_the_best_trial_at_its_stored_objective(
    launched: Launched, tmp_path: Path
) -> None:
    """``hwsearch export`` (default: the best trial) writes a program whose cross-entropy on the
    training set in use (the first 300 images) is the objective the study stored for it."""
    from hwsearch.training.data import load_dataset

    out = tmp_path / "best.pt2"
    done = run_hwsearch("export", "--storage", launched.url, "--study", HIGHWAY,
                        "--out", str(out))
    assert done.returncode == 0, done.stderr
    program = torch.export.load(str(out)).module()
    data = load_dataset("mnist", launched.data_dir).limit_train(LIMIT)
    with torch.no_grad():
        logits = program(data.x_train)
    ce = F.cross_entropy(logits.double(), data.y_train).item()
    best = _best(launched.studies[HIGHWAY])
    assert ce == pytest.approx(best.value, rel=1e-5)
    others = [t.value for t in launched.studies[HIGHWAY]
              if t.state == TrialState.COMPLETE and t.number != best.number]
    assert all(not math.isclose(ce, v, rel_tol=1e-4) for v in others)  # not another trial's


def test_read_commands_change_nothing_stored(launched: Launched, tmp_path: Path) -> None:
    """status, best, trials, report and export on the finished database: its directory holds
    the same files with the same bytes after as before (no write, no lock file, no journal)."""
    # This process's own Optuna storages (``studies()`` above) hold the WAL files open until
    # they are collected; collect them now, not at some moment during the commands below.
    gc.collect()
    before = _fingerprint(launched.db.parent)
    for argv in (["status"], ["best", "--format", "json"],
                 ["trials", "--study", HIGHWAY, "--format", "csv"],
                 ["report", "--out", str(tmp_path / "r"), "--skip-data-figures"],
                 ["export", "--study", HIGHWAY, "--out", str(tmp_path / "m.pt2")]):
        out = run_hwsearch(*argv, "--storage", launched.url, cwd=tmp_path)
        assert out.returncode == 0, (argv, out.stderr[-2000:])
        if argv[0] == "best":
            rows = {r["study"]: r for r in json.loads(out.stdout)}
            assert rows[HIGHWAY]["number"] == _best(launched.studies[HIGHWAY]).number
    assert _fingerprint(launched.db.parent) == before
    again = optuna.load_study(study_name=HIGHWAY, storage=launched.url).get_trials()
    assert [(t.number, t.state, t.value) for t in again] == [
        (t.number, t.state, t.value) for t in launched.studies[HIGHWAY]]
