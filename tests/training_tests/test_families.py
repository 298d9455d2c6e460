"""The family table: every family builds its net, packs, samples and names its studies through
the same few methods, so a call site never needs to know which family it holds."""

from __future__ import annotations

import pytest
import torch

from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import study_name
from hwsearch.training import FAMILIES, MODELS, ConfigError, Hyperparams, TrainConfig, family
from hwsearch.training.datasets import DATASETS

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DATASET_OF = {"mnist-highway-10": "mnist", "cifar10-highway-19": "cifar10",
              "cifar100-highway-19": "cifar100"}


def _config(name: str) -> TrainConfig:
    width = 4 if name == "mnist-highway-10" else 0  # the CIFAR presets fix their widths
    return TrainConfig(model=name, dataset=DATASET_OF.get(name, "mnist"), depth=3, width=width)


@pytest.mark.parametrize("name", MODELS)
def test_every_family_builds_a_net_that_maps_images_to_logits(name: str) -> None:
    config = _config(name)
    info = DATASETS[config.dataset]
    hp = Hyperparams.for_model(name)
    net = family(name).build(config.model_config(hp, info.features, info.shape[0], info.classes),
                             torch.Generator().manual_seed(0))
    logits = net(torch.rand(2, *info.shape))
    assert logits.shape[0] == 2 and logits.shape[1] >= info.classes


@pytest.mark.parametrize("name", MODELS)
def test_every_family_packs_two_trials(name: str) -> None:
    config = _config(name)
    info = DATASETS[config.dataset]
    trials = [Hyperparams.for_model(name, seed=s) for s in (0, 1)]
    nets = [family(name).build(config.model_config(hp, info.features, info.shape[0],
                                                   info.classes)) for hp in trials]
    engine = family(name).pack(config, trials, nets, torch.device("cpu"), torch.float32)
    assert engine.k == 2


def test_only_gated_families_sample_a_gate_bias() -> None:
    space = SearchSpace()
    sampled = {name: set(space.distributions(name)) for name in MODELS}
    assert sampled["plain"] == {"lr", "momentum", "lr_decay", "activation"}
    assert sampled["highway"] == sampled["plain"] | {"gate_bias"}
    for name in DATASET_OF:
        assert sampled[name] == {"lr", "momentum", "weight_decay", "gate_bias"}


def test_each_family_names_its_studies_apart() -> None:
    names = {study_name(_config(name)) for name in MODELS}
    assert len(names) == len(MODELS)


def test_an_unknown_family_is_one_line_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown model 'resnet'; allowed: highway, plain"):
        family("resnet")
    assert set(FAMILIES) == set(MODELS)
