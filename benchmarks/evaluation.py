"""What evaluating costs beside training: one epoch of ``training.fit``, per configuration.

For each configuration (highway FC nets at each ``--depths``, in packs of ``--k`` as a local
CPU launch packs a study of 40; the authors' conv net ``mnist-highway-10`` at ``--conv-width``,
trained singly as a local CPU launch trains it) this runs one epoch of the real loop, on one
thread, and reads its own record: the epoch's wall time, and of it the seconds spent on the
objective (every trial's cross-entropy over the whole training set) and the test accuracy.
The share is evaluation ÷ the epoch's whole wall time (evaluation included), the figure issue
23 bounds (at most 25% for FC, 35% for conv). The test set is measured once per run, after its
last epoch, so a one-epoch run is its worst case: an E-epoch run pays it once, not E times.

``--fraction F`` keeps the first F of the training and of the test set alike, so an epoch and
its evaluation shrink together and the share stays what a full epoch has (the evaluation's
chunks and the training's batches keep their sizes).

    python benchmarks/evaluation.py --data-dir /work/shared/data/MNIST --fraction 0.1

``--tanh both`` runs each FC configuration twice in one run, the evaluation's tanh as torch's
and as the code's ``2·sigmoid(2z) − 1``, so the two can be compared under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(_REPO))

import torch  # noqa: E402

from hwsearch.models import packed  # noqa: E402
from hwsearch.training import Hyperparams, TrainConfig  # noqa: E402
from hwsearch.training.data import Dataset, load_dataset  # noqa: E402
from hwsearch.training.engines import Engine  # noqa: E402
from hwsearch.training.loop import fit  # noqa: E402
from hwsearch.training.trainer import build_engine  # noqa: E402

CONV = "mnist-highway-10"


def subset(data: Dataset, fraction: float) -> Dataset:
    n, m = round(len(data.y_train) * fraction), round(len(data.y_test) * fraction)
    return Dataset(data.name, data.x_train[:n], data.y_train[:n], data.x_test[:m],
                   data.y_test[:m], data.num_classes, data.augment)


def fc_trials(k: int, activations: str = "tanh") -> list[Hyperparams]:
    """``activations``: tanh or relu for all, or mixed (the first half relu, as a search's
    packs hold both, each activation's trials side by side)."""
    def act(i: int) -> str:
        return activations if activations != "mixed" else ("relu" if i < k // 2 else "tanh")

    return [Hyperparams(lr=0.01 + 0.09 * i / max(k - 1, 1), momentum=0.9, lr_decay=0.9,
                        activation=act(i), gate_bias=-3.0, seed=i) for i in range(k)]


def torch_tanh_(z: torch.Tensor) -> torch.Tensor:
    return z.tanh_()


TANH = {"sigmoid": packed.tanh_from_sigmoid_, "torch": torch_tanh_}


class Clocked:
    """An engine whose evaluations add up this thread's CPU seconds: on a shared machine the
    CPU time of a one-thread run says what it cost, whatever the others took."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.cpu = engine, 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = time.thread_time()
        try:
            return self.engine.evaluate(x, y)
        finally:
            self.cpu += time.thread_time() - start


def one_epoch(config: TrainConfig, trials: list[Hyperparams], data: Dataset,
              eval_test: bool) -> dict[str, float]:
    """One epoch of ``fit``: its record's wall and evaluation seconds, and the same in CPU
    seconds of this thread."""
    engine, _ = build_engine(config, trials, data, packed=len(trials) > 1)
    clocked = Clocked(engine)
    start = time.thread_time()
    results = fit(clocked, data, [t.seed for t in trials], epochs=1,  # type: ignore[arg-type]
                  batch_size=config.batch, eval_test=eval_test)
    cpu = time.thread_time() - start
    record = results[0].epochs[0]
    # The test set is measured once, after the last epoch: with one epoch, all of it counts.
    epoch_s = record.seconds + results[0].test_seconds
    eval_s = record.eval_seconds + results[0].test_seconds
    return {"epoch_s": epoch_s, "eval_s": eval_s, "share": eval_s / epoch_s,
            "epoch_cpu_s": cpu, "eval_cpu_s": clocked.cpu, "cpu_share": clocked.cpu / cpu}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="/work/shared/data/MNIST")
    p.add_argument("--fraction", type=float, default=0.1, help="of the train and test sets")
    p.add_argument("--depths", default="10,50,100", help="FC depths; empty: none")
    p.add_argument("--k", type=int, default=20, help="FC trials per pack")
    p.add_argument("--conv-width", type=int, default=16, help="0: no conv net")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--activations", choices=("tanh", "relu", "mixed"), default="tanh",
                   help="of the FC packs' trials (default tanh, the costliest)")
    p.add_argument("--tanh", choices=("sigmoid", "torch", "both"), default="sigmoid",
                   help="the evaluation's tanh: 2·sigmoid(2z) − 1 (the code's), torch.tanh "
                        "(before 2026-12-06), or both, alternately in this run")
    p.add_argument("--no-test", action="store_true", help="the objective only")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = subset(load_dataset("mnist", args.data_dir).to("cpu"), args.fraction)
    rows: list[dict[str, object]] = []
    load_before = os.getloadavg()[0]
    tanhs = ("torch", "sigmoid") if args.tanh == "both" else (args.tanh,)
    runs: list[tuple[str, TrainConfig, list[Hyperparams], str]] = [
        (f"highway depth {d}, K={args.k}, {args.activations}"
         + (f", {tanh} tanh" if len(tanhs) > 1 else ""),
         TrainConfig(model="highway", depth=int(d), device="cpu"),
         fc_trials(args.k, args.activations), tanh)
        for d in filter(None, args.depths.split(",")) for tanh in tanhs
    ]
    if args.conv_width:
        runs.append((f"{CONV} width {args.conv_width}, single",
                     TrainConfig(model=CONV, width=args.conv_width, device="cpu"),
                     [Hyperparams.for_model(CONV, lr=0.01, seed=0)], "sigmoid"))
    for name, config, trials, tanh in runs:
        packed.tanh_from_sigmoid_ = TANH[tanh]  # type: ignore[assignment]
        row = {"config": name, "tanh": tanh,
               **one_epoch(config, trials, data, not args.no_test)}
        rows.append(row)
        print(f"{name:48s} wall: epoch {row['epoch_s']:7.2f} s, evaluation {row['eval_s']:6.2f} s"
              f" ({row['share']:5.1%});  CPU: epoch {row['epoch_cpu_s']:7.2f} s, evaluation "
              f"{row['eval_cpu_s']:6.2f} s ({row['cpu_share']:5.1%})", flush=True)
    packed.tanh_from_sigmoid_ = TANH["sigmoid"]  # type: ignore[assignment]
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "threads": args.threads,
            "activations": args.activations,
            "fraction": args.fraction, "test": not args.no_test,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "torch": torch.__version__}
    print(f"load average (1 min) before {load_before:.2f}, after {meta['load_after']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
