"""``hwsearch export``: a stored trial's model as a torch.export program that loads and runs
without this project, and gives the stored net's logits; bad requests are one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import torch

from hwsearch.storage import open_storage
from hwsearch.storage.weights import load_trial_model
from hwsearch.training.data import Dataset
from hwtest import run_hwsearch
from hwtest.search_builder import Config, run_study

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# Load the program with every hwsearch import blocked: it must not need the project.
LOAD = textwrap.dedent("""
    import sys
    sys.modules["hwsearch"] = None  # any import of the project now fails
    import torch
    module = torch.export.load(sys.argv[1]).module()
    images = torch.load(sys.argv[2])
    torch.save(module(images), sys.argv[3])
""")


@pytest.fixture(scope="module")
def stored(mnist: Dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'e.db'}"
    store = open_storage(url)
    good = tuple({"lr": lr, "momentum": 0.5, "lr_decay": 0.5, "activation": "tanh",
                  "gate_bias": -2.0} for lr in (0.1, 0.02, 0.004))  # three that train
    name = run_study(store, mnist, Config("highway", 4, 3, good), epochs=1, limit_train=500,
                     seed=1)
    values = [t.value for t in optuna.load_study(study_name=name, storage=store.optuna).trials]
    store.close()
    assert len(set(values)) == 3 and None not in values  # a best, a worst and one between
    return url, name


def test_round_trip_without_the_project(stored: tuple[str, str], mnist: Dataset,
                                        tmp_path: Path) -> None:
    url, name = stored
    out = tmp_path / "best.pt2"
    done = run_hwsearch("export", "--storage", url, "--study", name, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and out.is_file()
    images = mnist.x_test[:7]  # (N, 1, 28, 28) in [0, 1]; a batch size it was not traced with
    torch.save(images, tmp_path / "images.pt")
    ran = subprocess.run([sys.executable, "-c", LOAD, str(out), str(tmp_path / "images.pt"),
                          str(tmp_path / "logits.pt")], capture_output=True, text=True,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    logits = torch.load(tmp_path / "logits.pt")
    store = open_storage(url)
    best = optuna.load_study(study_name=name, storage=store.optuna).best_trial
    with torch.no_grad():
        expected = load_trial_model(store, best)(images)
    store.close()
    assert logits.shape == (7, 10)
    torch.testing.assert_close(logits, expected)


def test_a_chosen_trial_and_bad_requests(stored: tuple[str, str], tmp_path: Path) -> None:
    url, name = stored
    ok = run_hwsearch("export", "--storage", url, "--study", name, "--trial", "1",
                      "--out", str(tmp_path / "t1.pt2"))
    assert ok.returncode == 0, ok.stderr
    for args, needle in [
        (["--study", "nope", "--out", str(tmp_path / "a")], "no study 'nope'"),
        (["--study", name, "--trial", "99", "--out", str(tmp_path / "b")], "no trial 99"),
        (["--study", name, "--out", str(tmp_path / "t1.pt2")], "exists"),
        (["--study", name, "--out", str(tmp_path / "no-dir" / "c")], "does not exist"),
    ]:
        out = run_hwsearch("export", "--storage", url, *args)
        assert out.returncode == 2, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, out.stderr)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_damaged_weights_are_one_line_for_export_and_skipped_by_the_report(
    stored: tuple[str, str], tmp_path: Path
) -> None:
    """A ``weights.pt`` artifact that is not this project's payload (another tool's, a damaged
    row): export says so in one line (exit 2), the Python API raises a ValueError naming the
    trial, and the report skips the trial, says so, and shows the next kept one."""
    import shutil

    import sqlalchemy as sa

    from hwsearch.storage.artifacts import ARTIFACTS
    from hwsearch.storage.weights import UnreadableWeightsError, weights_artifact_id

    url, name = stored
    copy = tmp_path / "damaged.db"
    shutil.copy(url.removeprefix("sqlite:///"), copy)
    damaged_url = f"sqlite:///{copy}"
    store = open_storage(damaged_url)
    study = optuna.load_study(study_name=name, storage=store.optuna)
    best = study.best_trial
    payloads = {b"weights": "not a torch.save file", _zip_of(b"not a pickle"): "weights"}
    for payload, needle in payloads.items():
        artifact = weights_artifact_id(store, best)
        store.database.write("test", lambda c, a=artifact, p=payload: c.execute(
            sa.update(ARTIFACTS).where(ARTIFACTS.c.artifact_id == a).values(data=p)))
        with pytest.raises(UnreadableWeightsError, match=f"trial {best.number}'s stored"):
            load_trial_model(store, best)
        out = run_hwsearch("export", "--storage", damaged_url, "--study", name,
                           "--out", str(tmp_path / "best.pt2"))
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert f"trial {best.number}'s stored weights" in lines[0] and needle in lines[0]
        assert not (tmp_path / "best.pt2").exists()
    store.close()
    report = run_hwsearch("report", "--storage", damaged_url, "--out", str(tmp_path / "r"),
                          "--skip-data-figures")
    assert report.returncode == 0, report.stderr[-2000:]
    page = (tmp_path / "r" / "index.html").read_text()
    assert f"Better trials without usable weights were skipped: trial {best.number} " in page


def _zip_of(member: bytes) -> bytes:
    """A zip archive (what torch.save writes) whose one member is ``member``."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", member)
    return buf.getvalue()
