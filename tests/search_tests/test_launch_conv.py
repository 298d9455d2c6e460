"""A conv search end to end on a local Ray: a real ``hwsearch launch`` of the authors' MNIST net
(narrowed to width 4 for 2 cores) on real MNIST, its trials in one pack of grouped convs, with
exact counts, resume and stored weights."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hwsearch.models import preset
from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.fc import count_parameters
from hwsearch.storage import open_storage
from hwsearch.storage.records import STUDY_SPEC, history
from hwsearch.storage.weights import load_trial_model
from hwtest import run_hwsearch, tiny_launch_args

pytestmark = pytest.mark.slow


def test_conv_search_exact_counts_and_resume(mnist_dir: Path, tmp_path: Path, prefix: str) -> None:
    url = f"sqlite:///{tmp_path / 'conv.db'}"
    args = tiny_launch_args(url, str(mnist_dir), prefix, **{
        "--models": "mnist-highway-10", "--width": "4", "--trials": "3", "--batch-size": "0",
        "--limit-train": "200", "--pack": "3",  # one pack of grouped convs
    })
    first = run_hwsearch(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    name = f"{prefix}mnist-highway-10-w4"
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    spec = study.user_attrs[STUDY_SPEC]
    assert (spec["recipe"], spec["batch_size"], spec["width"]) == ("caffe-mnist", 100, 4)
    for t in trials:
        assert set(t.params) == {"lr", "momentum", "weight_decay", "gate_bias"}
        assert t.user_attrs["pack_size"] == 3
        (epoch,) = history(t)
        assert t.value == pytest.approx(epoch["train_loss"])
        assert epoch["lr"] == pytest.approx(t.params["lr"])  # 2 steps: before any milestone

    store = open_storage(url)
    model = load_trial_model(store, study.best_trial)
    store.close()
    assert isinstance(model, ConvHighwayNet)
    expected = count_parameters(ConvHighwayNet(preset("mnist-highway-10", width=4)))
    assert count_parameters(model) == expected
    assert model.config.gate_bias == pytest.approx(study.best_trial.params["gate_bias"])

    again = run_hwsearch(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name=name, storage=url).get_trials()) == 3
