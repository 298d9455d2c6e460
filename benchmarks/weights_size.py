"""A Figure-1 grid database's size under each weights policy, without training.

Trains nothing: it writes, through the launch's own bookkeeping (``PackPlanner``: ask, pack
size, node, one epoch's record, the finish that stores weights by policy), the database a
one-epoch grid leaves behind: plain and highway × depths 10, 20, 50, 100 × ``--trials`` trials
(40, the papers'), each trial's weights those of a freshly initialised net of its
configuration (the same bytes as a trained one: a state dict's size depends on its shapes
only), its objective drawn at random (which trials are best does not change the size). Then
it prints the SQLite file's size (write-ahead log checkpointed) per policy and the ratio.

    python benchmarks/weights_size.py --policies all,top:5 [--trials 40] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEPTHS = (10, 20, 50, 100)
MODELS = ("plain", "highway")


class _Holder:
    def add(self, trial_id: int) -> None: ...

    def discard(self, trial_id: int) -> None: ...


class _Events:
    def finished(self, study: str, value: float | None, diverged: bool = False) -> None: ...

    def failed(self, study: str) -> None: ...

    def note(self, message: str) -> None: ...


def _blob(model: str, depth: int, seed: int) -> bytes:
    """A net of the configuration, initialised from ``seed``, serialised as a launch stores
    it (``storage/weights.py``)."""
    from hwsearch.training import Hyperparams, TrainConfig
    from hwsearch.training.families import family
    from hwsearch.training.loop import init_generator
    from hwsearch.training.payload import serialize_weights

    config = TrainConfig(model=model, depth=depth, epochs=1)
    hp = Hyperparams.for_model(model, seed=seed)
    model_config = config.model_config(hp, 784, 1, 10)
    net = family(model).build(model_config, init_generator(seed))
    return serialize_weights(model_config, net.state_dict())


def build(path: Path, policy: str, trials: int, pack: int = 8) -> dict[str, float]:
    """The grid's database at ``path`` under ``policy``; its size and the bytes per part."""
    from hwsearch.search.messages import (
        EpochReport,
        FinalReport,
        Node,
        TrialEpoch,
        TrialFinal,
    )
    from hwsearch.search.planner import PackPlanner, StudyPlan
    from hwsearch.search.space import SearchSpace
    from hwsearch.search.studies import open_study
    from hwsearch.storage import open_storage
    from hwsearch.storage.keep import KeepPolicy
    from hwsearch.training import TrainConfig

    rng = random.Random(0)
    store = open_storage(f"sqlite:///{path}")
    space = SearchSpace()
    plans = {}
    for model in MODELS:
        for depth in DEPTHS:
            config = TrainConfig(model=model, depth=depth, epochs=1)
            name = f"mnist-{model}-d{depth}"
            study = open_study(store.optuna, name, config, 0, space)
            plans[name] = StudyPlan(study, trials, space.distributions(model), config.to_dict(),
                                    0)
    planner = PackPlanner(store, plans, pack, holder=_Holder(), events=_Events(),
                          launcher_id="size", heartbeat_interval=10,
                          keep=KeepPolicy.parse(policy))
    blobs = {name: _blob(name.split("-")[1], int(name.split("-d")[1]), 0) for name in plans}
    node = Node("0" * 56, "127.0.0.1", "host")
    while (p := planner.next_pack()) is not None:
        planner.pack_config(p)
        values = {t.number: rng.uniform(0.05, 2.3) for t in p.trials}
        records = [TrialEpoch(t.number, {
            "epoch": 1, "train_loss": values[t.number], "running_loss": values[t.number] * 1.1,
            "train_accuracy": rng.random(), "test_accuracy": rng.random(), "lr": 0.01,
            "seconds": 1.0}, None) for t in p.trials]
        planner.record_epoch(p, EpochReport(1, records, node))
        final = FinalReport([TrialFinal(t.number, None, values[t.number], True)
                             for t in p.trials], 1, node)
        planner.finish(p, final, {t.number: blobs[p.study] for t in p.trials})
    kept_bytes = sum(len(blobs[n]) * min(trials, KeepPolicy.parse(policy).top or trials)
                     for n in plans)
    loads = 0
    if KeepPolicy.parse(policy).top != 0:  # every study's best trial still loads
        from hwsearch.storage.weights import load_trial_model

        for name in plans:
            best = store.optuna.get_trial(store.trial_id(name, store.best_number(name)))
            loads += load_trial_model(store, best) is not None
    with store.optuna.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {"policy": policy, "bytes": path.stat().st_size, "weights_bytes": kept_bytes,
            "weights_per_trial": {n: len(b) for n, b in blobs.items()},
            "best_trials_that_load": loads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policies", default="all,top:5")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    load = os.getloadavg()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policies.split(","):
            start = time.perf_counter()
            r = build(Path(tmp) / f"{policy.replace(':', '')}.db", policy, args.trials)
            r["seconds"] = round(time.perf_counter() - start, 1)
            out.append(r)
            print(f"{policy}: {r['bytes'] / 1e6:.1f} MB ({args.trials} trials x 8 studies; "
                  f"weights {r['weights_bytes'] / 1e6:.1f} MB), {r['seconds']} s; best trial "
                  f"loads in {r['best_trials_that_load']} of 8 studies")
    if len(out) == 2:
        print(f"{out[1]['policy']} / {out[0]['policy']}: {out[1]['bytes'] / out[0]['bytes']:.3f}")
    print(f"load average before: {load[0]:.1f}, after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"trials": args.trials, "runs": out,
                                         "load": [load[0], os.getloadavg()[0]]}, indent=2))


if __name__ == "__main__":
    main()
