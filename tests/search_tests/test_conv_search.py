"""What a conv search asks for: its space, its study names, its pack sizes (no Ray here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from hwsearch.models import parameter_count
from hwsearch.options import ConfigError
from hwsearch.search.launcher import pick_pack_size
from hwsearch.search.settings import PACK_AUTO, LaunchSettings
from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import check_study, open_study, study_name
from hwsearch.training import TrainConfig
from hwtest import REPO


def test_conv_space_is_the_recipes() -> None:
    dists = SearchSpace().distributions("mnist-highway-10")
    assert set(dists) == {"lr", "momentum", "weight_decay", "gate_bias"}
    # the solver's own values lie inside
    assert dists["lr"].low < 0.01 < 0.025 < dists["lr"].high
    assert dists["momentum"].low < 0.9 < dists["momentum"].high
    assert dists["weight_decay"].low < 0.001 < dists["weight_decay"].high
    assert dists["gate_bias"].low < -2.0 < -1.0 < dists["gate_bias"].high
    assert set(SearchSpace().distributions("highway")) == {
        "lr", "momentum", "lr_decay", "activation", "gate_bias"}
    narrow = SearchSpace.from_dict({"weight_decay": {"low": 0.001, "high": 0.002}})
    assert narrow.distributions("cifar10-highway-19")["weight_decay"].high == 0.002


def test_conv_study_names_say_the_width() -> None:
    assert study_name(TrainConfig(model="mnist-highway-10")) == "mnist-highway-10"
    assert study_name(TrainConfig(model="mnist-highway-10", width=32), "p-") == (
        "p-mnist-highway-10-w32")
    assert study_name(TrainConfig(model="mnist-highway-10", dataset="fashion-mnist")) == (
        "fashion-mnist-mnist-highway-10")
    assert study_name(TrainConfig(model="highway", depth=50)) == "mnist-highway-d50"


def test_a_conv_study_named_by_version_0_1_keeps_its_name() -> None:
    """hwsearch 0.1 named conv studies ``<dataset>-<preset>[-wW]-d<depth>``: a database it wrote
    resumes under that name while no study has the current one."""
    config = TrainConfig(model="mnist-highway-10", width=32)
    old = "p-mnist-mnist-highway-10-w32-d10"
    assert study_name(config, "p-", existing=[old]) == old
    assert study_name(config, "p-", existing=[old, "p-mnist-highway-10-w32"]) == (
        "p-mnist-highway-10-w32")
    assert study_name(config, "p-", existing=["p-mnist-highway-d10"]) == "p-mnist-highway-10-w32"


def test_conv_studies_pack() -> None:
    settings = LaunchSettings(models=("mnist-highway-10",), trials=10, pack=PACK_AUTO)
    assert pick_pack_size(settings) == 1  # on CPU grouped convs do not pay (README)
    gpu = replace(settings, gpus_per_trial=1.0)
    assert pick_pack_size(gpu) == 8 and pick_pack_size(replace(gpu, trials=3)) == 3
    assert pick_pack_size(replace(settings, pack=6)) == 6
    (config,) = settings.configs()
    assert config.model == "mnist-highway-10" and config.depth == 10 and config.batch == 100


@pytest.mark.slow
def test_hwsearch_train_uses_the_recipe(mnist_dir: Path) -> None:
    """``hwsearch train --model mnist-highway-10`` as a user runs it: batch 100 and the solver's
    values unless given, on real MNIST."""
    run = subprocess.run(
        [sys.executable, "-m", "hwsearch", "train", "--model", "mnist-highway-10", "--width", "4",
         "--epochs", "1", "--limit-train", "300", "--device", "cpu", "--data-dir",
         str(mnist_dir), "--momentum", "0.8", "--json"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "recipe caffe-mnist: Nesterov" in run.stderr and "batch 100;" in run.stderr
    assert "lr=0.01, momentum=0.8" in run.stderr and "weight_decay=0.001" in run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])
    assert summary["params"] == parameter_count("mnist-highway-10", 4)
    assert summary["epochs"] == 1 and not summary["diverged"]


def test_each_family_records_its_own_space_so_old_fc_studies_resume() -> None:
    space = SearchSpace()
    # exactly the keys an FC study recorded before conv studies existed
    assert set(space.to_dict("highway")) == {"lr", "momentum", "lr_decay", "gate_bias",
                                             "activation"}
    assert set(space.to_dict("mnist-highway-10")) == {"conv_lr", "conv_momentum",
                                                      "weight_decay", "conv_gate_bias"}
    storage = optuna.storages.InMemoryStorage()
    fc, conv = TrainConfig(model="highway", depth=10), TrainConfig(model="mnist-highway-10")
    for config in (fc, conv):
        open_study(storage, study_name(config), config, 0, space)
    # a change to the conv ranges leaves the FC study resumable, and the other way round
    wider = SearchSpace.from_dict({"conv_lr": {"low": 1e-4, "high": 0.5}})
    assert check_study(storage, study_name(fc), fc, 0, wider)
    with pytest.raises(ConfigError, match="conv_lr"):
        check_study(storage, study_name(conv), conv, 0, wider)
    assert check_study(storage, study_name(conv), conv, 0,
                       SearchSpace.from_dict({"lr": {"low": 1e-3, "high": 0.5}}))


def test_a_conv_net_exports_with_a_dynamic_batch() -> None:
    import torch

    from hwsearch.models import preset
    from hwsearch.models.conv import ConvHighwayNet
    from hwsearch.search.export import export_model

    net = ConvHighwayNet(preset("mnist-highway-10", width=4)).eval()
    program = export_model(net, (1, 28, 28))
    x = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(program.module()(x), net(x))  # type: ignore[attr-defined]
