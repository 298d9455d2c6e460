"""Training one trial of the papers' protocol, outside any search: the settings are checked,
then the data is loaded and the trial trains, each epoch shown on ``out``; the summary is
returned."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from hwsearch.options import options_of
from hwsearch.search.memory import check_fits, local_device
from hwsearch.training import Hyperparams, TrainConfig, check_dataset

if TYPE_CHECKING:
    from hwsearch.training.loop import TrialResult


def train_settings(values: Mapping[str, Any]) -> tuple[TrainConfig, Hyperparams]:
    """The run and its hyperparameters from ``values`` (keyword names); hyperparameters left
    out come from the model's recipe."""
    config = TrainConfig(**{f.name: values[f.name] for f, _ in options_of(TrainConfig)
                            if values.get(f.name) is not None})
    given = {f.name: values.get(f.name) for f, _ in options_of(Hyperparams)}
    hp = Hyperparams.for_model(config.model, **{k: v for k, v in given.items() if v is not None})
    return config, hp


def train(config: TrainConfig, hp: Hyperparams, *, out: TextIO = sys.stderr) -> dict[str, Any]:
    """Train one trial; returns its summary (the objective is ``train_loss``, the lowest
    whole-training-set cross-entropy of any epoch). Checked first, as a launch checks: the
    memory the trial needs (on the CPU before torch is imported), then the data, whole."""
    if config.device == "cpu":
        check_fits([config], 1, local_device(0), single=True)
    check_dataset(config.dataset, config.data_dir, config.download)
    from hwsearch.training.loop import DIVERGENCE_FACTOR  # torch: the input is good
    from hwsearch.training.trainer import load_data, resolve_device
    from hwsearch.training.trainer import train as train_trials

    device = resolve_device(config.device)
    if device.type == "cuda":
        check_fits([config], 1, local_device(1.0), single=True)
    elif config.device != "cpu":
        check_fits([config], 1, local_device(0), single=True)
    data = load_data(config, device)
    start = time.perf_counter()

    def on_epoch(epoch: int, results: Sequence[TrialResult]) -> None:
        r = results[0]
        if r.diverged_epoch == epoch:
            print(f"epoch {epoch}/{config.epochs}: diverged (loss not finite or past "
                  f"{DIVERGENCE_FACTOR:g}x chance)", file=out)
            return
        e = r.epochs[-1]
        test = "" if e.test_accuracy is None else f" test_acc {e.test_accuracy:.4f}"
        print(f"epoch {epoch}/{config.epochs}: train_loss {e.train_loss:.4f} (whole training "
              f"set; running {e.running_loss:.4f}) train_acc {e.train_accuracy:.4f}{test} "
              f"lr {e.lr:.3g} {e.seconds:.1f}s (eval {e.eval_seconds:.1f}s)", file=out,
              flush=True)

    print(f"training {config.model} depth {config.depth} on {config.dataset} "
          f"({len(data.y_train)} examples) on {device}; recipe {config.recipe.describe()}; "
          f"batch {config.batch}; {hp}", file=out, flush=True)
    (result,), params = train_trials(config, [hp], data, packed=False, on_epoch=on_epoch)
    final = result.final
    best = result.epochs[result.best_epoch - 1] if result.best_epoch else None
    return {
        "train_loss": result.best_train_loss if final else None,
        "best_epoch": result.best_epoch,
        "final_train_loss": final.train_loss if final else None,
        "final_running_loss": final.running_loss if final else None,
        "train_accuracy": best.train_accuracy if best else None,
        "test_accuracy": result.test_accuracy,
        "epochs": len(result.epochs),
        "seconds": round(time.perf_counter() - start, 3),
        "params": params,
        "diverged": result.diverged,
    }
