"""Small but real random searches, stored exactly as the search service stores them (no Ray):
through the trial record (``hwsearch.storage.records``), with the service's trial seeds.

Used by the report tests' session fixture and to make the sample report in docs/report:
``python tests/hwtest/search_builder.py sqlite:///sample.db ../shared/data/MNIST``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import open_study, study_name
from hwsearch.storage import StudyStorage
from hwsearch.storage import records as rec
from hwsearch.storage.weights import upload_weights
from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.data import Dataset
from hwsearch.training.loop import TrialResult
from hwsearch.training.payload import serialize_weights
from hwsearch.training.trainer import train


class Search(NamedTuple):
    """A built search: where it is stored, its data, its studies."""

    url: str
    data_dir: str
    studies: list[str]


@dataclass(frozen=True)
class Config:
    model: str
    depth: int
    trials: int
    enqueue: tuple[Mapping[str, Any], ...] = ()  # fixed parameter sets, asked first


def run_study(
    store: StudyStorage, data: Dataset, config: Config, *, epochs: int, limit_train: int,
    seed: int = 0, prefix: str = "", batch_size: int = 128, space: SearchSpace | None = None,
) -> str:
    """Run ``config.trials`` trials of one configuration, recording each as the service does."""
    space = space or SearchSpace()
    config_ = TrainConfig(dataset="mnist", model=config.model, depth=config.depth,
                          epochs=epochs, batch_size=batch_size, limit_train=limit_train,
                          device="cpu")
    name = study_name(config_, prefix)
    study = open_study(store.optuna, name, config_, seed, space)
    for params in config.enqueue:
        study.enqueue_trial(dict(params))
    subset = data.limit_train(limit_train)
    for _ in range(config.trials):
        trial = study.ask(space.distributions(config.model))
        trial_id = store.trial_id(name, trial.number)
        store.write_attrs(trial_id, rec.ask_attrs(seed, trial.number, "search_builder", 10))
        p = trial.params
        hp = Hyperparams(lr=p["lr"], momentum=p["momentum"], lr_decay=p["lr_decay"],
                         activation=p["activation"], gate_bias=p.get("gate_bias", -2.0),
                         seed=rec.trial_seed(seed, trial.number))

        def on_epoch(epoch: int, results: Sequence[TrialResult], trial_id: int = trial_id
                     ) -> None:
            epochs_done = results[0].epochs
            if epochs_done and epochs_done[-1].epoch == epoch:
                rec.record_epoch(store, trial_id, asdict(epochs_done[-1]))

        (result,), _ = train(config_, [hp], subset, packed=False, on_epoch=on_epoch)
        if result.diverged or not math.isfinite(result.best_train_loss):
            rec.mark_diverged(store, trial_id, result.diverged_epoch or 1)
            continue
        assert result.state_dict is not None
        model_config = config_.model_config(hp, subset.in_features, subset.in_channels,
                                            subset.num_classes)
        upload_weights(store, trial_id, serialize_weights(model_config, result.state_dict))
        rec.mark_completed(store, trial_id, result.best_train_loss, test=result.test_accuracy)
    return name


# Plain relu nets with this step size blow up within two epochs (NaN loss): a real divergence.
DIVERGING = {"lr": 1.0, "momentum": 0.99, "lr_decay": 1.0, "activation": "relu"}


def main() -> None:
    import torch

    from hwsearch.storage import open_storage
    from hwsearch.training.data import load_dataset

    torch.set_num_threads(1)  # small nets; threads only contend on a shared machine

    parser = argparse.ArgumentParser(description="Run a small sample search for the report.")
    parser.add_argument("storage_url")
    parser.add_argument("data_dir")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=2000)
    parser.add_argument("--depths", default="10,20", help="plain and highway")
    parser.add_argument("--highway-depth", type=int, default=50, help="one more, highway only")
    args = parser.parse_args()
    store = open_storage(args.storage_url)
    data = load_dataset("mnist", args.data_dir)
    configs = [Config(m, int(d), args.trials) for m in ("plain", "highway")
               for d in args.depths.split(",")]
    if str(args.highway_depth) not in args.depths.split(","):
        configs.append(Config("highway", args.highway_depth, args.trials))
    for config in configs:
        name = run_study(store, data, config, epochs=args.epochs, limit_train=args.limit_train,
                         seed=1)
        print("ran", name, flush=True)
    store.close()


if __name__ == "__main__":
    main()
