"""Quick CUDA correctness check of the packed engine and its fast paths (one minute or less).

1. ``single``: a pack of K=4 depth-10 highway nets (float32) against the same 4 trials trained
   one at a time by :class:`SingleEngine`; the per-epoch loss curves must agree.
2. each ``--modes`` entry (``training.compiled``) against the eager :class:`PackedEngine` on the
   same trials: loss curves, test accuracies and final weights must agree.

Tolerances are float32 ones: the pack and the single runs sum their matmuls differently
(``baddbmm`` vs ``addmm``), a few ulps per op, amplified mildly over ~100 steps; a real bug (a
wrong lr, momentum, seed or data order) moves the first epoch's loss by 1e-3 or more.
Exit status 1 if any check fails.

    python benchmarks/cuda_check.py --data-dir .device/MNIST
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import torch  # noqa: E402

from hwsearch.training import DataError, Hyperparams, TrainConfig  # noqa: E402
from hwsearch.training.compiled import MODES, compile_engine  # noqa: E402
from hwsearch.training.data import Dataset  # noqa: E402
from hwsearch.training.loop import TrialResult, fit  # noqa: E402
from hwsearch.training.trainer import build_engine, load_data, train  # noqa: E402

TRIALS = [
    Hyperparams(lr=0.05, momentum=0.9, lr_decay=0.9, activation="tanh", gate_bias=-2.0, seed=1),
    Hyperparams(lr=0.02, momentum=0.5, lr_decay=0.6, activation="tanh", gate_bias=-1.0, seed=2),
    Hyperparams(lr=0.1, momentum=0.0, lr_decay=1.0, activation="tanh", gate_bias=-3.0, seed=3),
    Hyperparams(lr=0.01, momentum=0.95, lr_decay=0.7, activation="tanh", gate_bias=-4.0, seed=4),
]
LOSS_RTOL = 1e-3  # per-epoch mean training loss, relative
WEIGHT_RTOL = 1e-3  # ‖Δw‖ / ‖w‖ over all of a trial's weights


def curves(results: Sequence[TrialResult]) -> torch.Tensor:
    return torch.tensor([[e.train_loss for e in r.epochs] for r in results], dtype=torch.float64)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs() / b.abs().clamp_min(1e-12)).max().item()


def weights_rel(a: Sequence[TrialResult], b: Sequence[TrialResult]) -> float:
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        assert ra.state_dict is not None and rb.state_dict is not None
        wa = torch.cat([v.flatten().double() for v in ra.state_dict.values()])
        wb = torch.cat([rb.state_dict[k].flatten().double() for k in ra.state_dict])
        worst = max(worst, ((wa - wb).norm() / wb.norm()).item())
    return worst


def report(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


def check_single(config: TrainConfig, data: Dataset) -> bool:
    start = time.perf_counter()
    packed, _ = train(config, TRIALS, data, packed=True)
    singles = [train(config, [hp], data, packed=False)[0][0] for hp in TRIALS]
    loss, weights = rel(curves(packed), curves(singles)), weights_rel(packed, singles)
    return report(
        "packed vs single (K=4)",
        loss < LOSS_RTOL and weights < WEIGHT_RTOL,
        f"loss curves max rel diff {loss:.2e}, weights {weights:.2e} "
        f"(limits {LOSS_RTOL:g}, {WEIGHT_RTOL:g}); {time.perf_counter() - start:.1f} s",
    )


def check_mode(mode: str, config: TrainConfig, data: Dataset) -> bool:
    seeds = [hp.seed for hp in TRIALS]
    kw = dict(epochs=config.epochs, batch_size=config.batch)
    eager, _ = build_engine(config, TRIALS, data, packed=True)
    reference = fit(eager, data, seeds, **kw)  # type: ignore[arg-type]
    engine, _ = build_engine(config, TRIALS, data, packed=True)
    start = time.perf_counter()
    try:
        ours = fit(compile_engine(engine, mode), data, seeds, **kw)  # type: ignore[arg-type, call-overload]
    except Exception as e:  # report and go on with the other checks
        return report(f"{mode} vs eager", False, f"{type(e).__name__}: {e}")
    seconds = time.perf_counter() - start
    loss, weights = rel(curves(ours), curves(reference)), weights_rel(ours, reference)
    test = max(
        abs((a.test_accuracy or 0) - (b.test_accuracy or 0))  # the stored models'
        for a, b in zip(ours, reference, strict=True)
        if a.final and b.final
    )
    return report(
        f"{mode} vs eager (K=4)",
        loss < LOSS_RTOL and weights < WEIGHT_RTOL and test <= 2 / len(data.y_test),
        f"loss curves max rel diff {loss:.2e}, weights {weights:.2e}, test accuracy "
        f"{test:.4f}; {seconds:.1f} s with compile/capture",
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="../shared/data/MNIST")
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", nargs="*", default=["cudagraph"], choices=MODES[1:])
    p.add_argument("--skip-single", action="store_true")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("FAIL  no CUDA device visible to torch", flush=True)
        return 1
    config = TrainConfig(
        data_dir=args.data_dir,
        depth=args.depth,
        epochs=args.epochs,
        batch_size=64,
        limit_train=2048,
        device=args.device,
        dtype="float32",
    )
    try:
        data = load_data(config)
    except DataError as e:
        print(f"notice: {e}; using synthetic data of MNIST's shape", file=sys.stderr)
        gen = torch.Generator().manual_seed(0)
        data = Dataset(
            "synthetic",
            torch.rand(2048, 1, 28, 28, generator=gen),
            torch.randint(0, 10, (2048,), generator=gen),
            torch.rand(1000, 1, 28, 28, generator=gen),
            torch.randint(0, 10, (1000,), generator=gen),
            10,
        ).to(args.device)
    name = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(
        f"{name}, torch {torch.__version__}; {data.name} ({len(data.y_train)} train); "
        f"highway depth {args.depth}, K=4, float32, {args.epochs} epochs of "
        f"{len(data.y_train) // 64} steps",
        flush=True,
    )
    ok = True
    if not args.skip_single:
        ok &= check_single(config, data)
    for mode in args.modes:
        ok &= check_mode(mode, config, data)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
