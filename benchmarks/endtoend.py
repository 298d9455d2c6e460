"""End to end, in one run: ``hwsearch launch`` against the do-it-yourself recipe a user would
write with Ray Tune and Optuna, on the same small search.

The workload (issue 12's CPU target): 8 highway trials, depth 10, width 50, 1 epoch of the full
MNIST training set, batch 128, the same search space, a local Ray, results in SQLite.

(a) ``diy``: ``tune.Tuner`` over a function trainable, one trial per Ray trial, searched by
    ``ray.tune.search.optuna.OptunaSearch``; the trainable is the conventional PyTorch loop
    (``nn.Module``, ``DataLoader`` over a ``TensorDataset``, ``torch.optim.SGD`` with momentum,
    ``ExponentialLR``), as the Ray Tune + Optuna examples write it, and reports its epoch's
    mean loss (the recipe's usual objective; it does not evaluate the training set).
(b) ``hwsearch``: ``hwsearch launch --models highway --depths 10 --trials 8 --epochs 1``.

Each runs as a fresh process (imports, Ray start and shutdown included), alternately, for
``--repeats`` rounds; the figure is the best round of each, and their ratio.

    python benchmarks/endtoend.py --repeats 2 --json benchmarks/results/cpu-endtoend.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIALS, DEPTH, EPOCHS = 8, 10, 1

DIY = r'''
import sys, time
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from ray import tune
from ray.tune.search.optuna import OptunaSearch

DATA_DIR, TRIALS, DEPTH, EPOCHS, STORAGE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), sys.argv[5]


class Highway(nn.Module):
    def __init__(self, width, gate_bias, act):
        super().__init__()
        self.h, self.t, self.act = nn.Linear(width, width), nn.Linear(width, width), act
        nn.init.constant_(self.t.bias, gate_bias)

    def forward(self, x):
        t = torch.sigmoid(self.t(x))
        return self.act(self.h(x)) * t + x * (1 - t)


def trainable(config):
    from hwsearch.training import load_dataset  # the IDX reader; torchvision wants raw files

    torch.set_num_threads(1)
    data = load_dataset("mnist", DATA_DIR)
    act = torch.tanh if config["activation"] == "tanh" else torch.relu
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 50), nn.Tanh(),
                          *(Highway(50, config["gate_bias"], act) for _ in range(DEPTH - 1)),
                          nn.Linear(50, 10))
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=128,
                        shuffle=True, drop_last=True)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config["lr_decay"])
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
        tune.report({"loss": total / len(loader)})


space = {
    "lr": tune.loguniform(1e-6, 1.0),
    "momentum": tune.uniform(0.0, 0.99),
    "lr_decay": tune.loguniform(1e-3, 1.0),
    "activation": tune.choice(["relu", "tanh"]),
    "gate_bias": tune.uniform(-10.0, -1.0),
}
import optuna
search = OptunaSearch(
    metric="loss", mode="min", storage=optuna.storages.RDBStorage(STORAGE), study_name="diy"
)
tuner = tune.Tuner(trainable, param_space=space, tune_config=tune.TuneConfig(
    search_alg=search, num_samples=TRIALS))
tuner.fit()
'''


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of ``cmd``, and its ``[hwsearch] time:`` line (empty for the recipe)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = [x for x in (done.stdout + done.stderr).splitlines() if "] time:" in x]
    return seconds, lines[-1].strip() if lines else ""


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "MNIST"))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    data = str(Path(args.data_dir).resolve())
    hwsearch = shutil.which("hwsearch") or str(Path(sys.executable).with_name("hwsearch"))
    times: dict[str, list[float]] = {"diy": [], "hwsearch": []}
    breakdowns: list[str] = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="endtoend-") as tmp:
            cwd = Path(tmp)
            diy, _ = run([sys.executable, "-c", DIY, data, str(TRIALS), str(DEPTH),
                          str(EPOCHS), f"sqlite:///{cwd / 'diy.db'}"], cwd)
            ours, breakdown = run([
                hwsearch, "launch", "--storage", f"sqlite:///{cwd / 'hw.db'}", "--dataset",
                "mnist", "--data-dir", data, "--models", "highway", "--depths", str(DEPTH),
                "--trials", str(TRIALS), "--epochs", str(EPOCHS)], cwd)
        times["diy"].append(diy)
        times["hwsearch"].append(ours)
        breakdowns.append(breakdown)
        print(f"round {r + 1}: diy {diy:.1f} s, hwsearch {ours:.1f} s (load average "
              f"{os.getloadavg()[0]:.1f})\n  {breakdown}", flush=True)
    best = {k: min(v) for k, v in times.items()}
    result = {
        "workload": {"trials": TRIALS, "depth": DEPTH, "epochs": EPOCHS, "data": "mnist 60000"},
        "seconds": best,
        "speedup": best["diy"] / best["hwsearch"],
        "rounds": times,
        "hwsearch_time_lines": breakdowns,
        "loadavg": os.getloadavg()[0],
    }
    print(f"best: diy {best['diy']:.1f} s, hwsearch {best['hwsearch']:.1f} s: "
          f"{result['speedup']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
