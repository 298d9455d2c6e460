"""How long ``hwsearch report`` takes on a demo-sized database, and where the time goes.

The database: plain and highway nets at depths 10 and 50, 12 trials each, every complete
trial with a history and stored weights (freshly initialised nets: the report's work is the
same whatever they learnt), so Figure 2 and the lesioning have a 50-layer highway net to
analyse. Built in seconds (no training), unless ``--storage`` names one already made.

    python benchmarks/report.py --data-dir ../shared/data/MNIST [--storage URL] [--profile]

Prints one JSON line: the seconds of the whole report (the command, a fresh process, as a user
runs it) and of each stage (from its ``report: stage k/n`` lines); ``--profile`` also prints the
top of a cProfile of the same work in this process. docs/performance.md records the results.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
for _path in (_REPO, _REPO / "tests"):  # runnable as a plain script from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

CONFIGS = [("plain", 10), ("plain", 50), ("highway", 10), ("highway", 50)]
TRIALS, EPOCHS = 12, 20


def build(url: str, seed: int = 0) -> None:
    """The demo-sized database at ``url`` (which must not hold these studies yet)."""
    import numpy as np
    import torch
    from optuna.trial import TrialState

    from hwsearch.models.fc import FCNet
    from hwsearch.search.space import SearchSpace
    from hwsearch.search.studies import open_study, study_name
    from hwsearch.storage import open_storage
    from hwsearch.storage import records as rec
    from hwsearch.storage.weights import upload_weights
    from hwsearch.training import Hyperparams, TrainConfig
    from hwsearch.training.payload import serialize_weights
    from hwtest.stored_trials import add_finished_trials, finished_trial

    rng = np.random.default_rng(seed)
    space = SearchSpace()
    store = open_storage(url)
    try:
        for model, depth in CONFIGS:
            config = TrainConfig(dataset="mnist", model=model, depth=depth, epochs=EPOCHS,
                                 device="cpu")
            name = study_name(config)
            open_study(store.optuna, name, config, seed, space)
            dists = space.distributions(model)
            templates, hps = [], []
            for number in range(TRIALS):
                params = {"lr": float(10 ** rng.uniform(-4, 0)),
                          "momentum": float(rng.uniform(0, 0.99)),
                          "lr_decay": float(10 ** rng.uniform(-2, 0)),
                          "activation": ("relu", "tanh")[number % 2]}
                if model == "highway":
                    params["gate_bias"] = float(rng.uniform(-10, -1))
                start = float(rng.uniform(0.3, 2.3))
                epochs = [{"epoch": e, "train_loss": start * 0.9 ** e,
                           "train_accuracy": 0.5, "test_accuracy": 0.9, "lr": 0.01,
                           "seconds": 1.0, "eval_seconds": 0.1} for e in range(1, EPOCHS + 1)]
                done = finished_trial(params, {k: dists[k] for k in params}, epochs)
                # Running until its weights are attached, as in a search.
                templates.append(copy.copy(done))
                templates[-1].state, templates[-1].value = TrialState.RUNNING, None
                templates[-1].datetime_complete = None
                hps.append((Hyperparams(**params), done.value))
            ids = add_finished_trials(store, name, templates)
            for trial_id, (hp, value) in zip(ids, hps, strict=True):
                torch.manual_seed(trial_id)
                model_config = config.model_config(hp, 784, 1, 10)
                net = FCNet(model_config)  # type: ignore[arg-type]
                upload_weights(store, trial_id, serialize_weights(model_config, net.state_dict()))
                rec.mark_completed(store, trial_id, value)
    finally:
        store.close()


def time_command(url: str, data_dir: str, out: Path) -> dict[str, float]:
    """The report as a user runs it; seconds in all and per stage (from its stderr lines)."""
    start = time.perf_counter()
    stamps: list[tuple[float, str]] = []
    env = {**os.environ, "HWSEARCH_STORAGE": url}
    with subprocess.Popen([sys.executable, "-m", "hwsearch", "report", "--out", str(out),
                           "--data-dir", data_dir], stderr=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True, env=env, cwd=_REPO) as p:
        assert p.stderr is not None
        for line in p.stderr:
            m = re.match(r"report: stage \d+/\d+: (.*)", line)
            stamps.append((time.perf_counter(), m[1] if m else line.strip()))
    total = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"report failed ({p.returncode}): {stamps[-3:]}")
    stages = {"starting (imports, until the first stage)": stamps[0][0] - start}
    for (t, what), (t_next, _) in zip(stamps, [*stamps[1:], (start + total, "")], strict=True):
        stages[what] = t_next - t
    return {"total": total, **{k: round(v, 2) for k, v in stages.items()}}


def profile(url: str, data_dir: str, out: Path, top: int) -> None:
    from hwsearch.report import write_report

    profiler = cProfile.Profile()
    profiler.enable()
    write_report(url, out, data_dir=data_dir)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="MNIST, for Figure 2 and lesioning")
    parser.add_argument("--storage", help="an existing database (default: build one)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile")
    parser.add_argument("--top", type=int, default=30, help="profile lines (default 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.storage
        built = None
        if url is None:
            url = f"sqlite:///{Path(tmp) / 'demo.db'}"
            start = time.perf_counter()
            build(url)
            built = round(time.perf_counter() - start, 1)
        result = time_command(url, args.data_dir, Path(tmp) / "out")
        load = os.getloadavg()[0]
        print(json.dumps({"report_seconds": round(result.pop("total"), 2), "stages": result,
                          "built_seconds": built, "load_1min": load}))
        if args.profile:
            profile(url, args.data_dir, Path(tmp) / "profiled", args.top)


if __name__ == "__main__":
    main()
