"""How long the Figure-1 grid epoch would take on this CPU if each step and each evaluation did
nothing but its matrix multiplications, at the speed those run inside real steps.

Why: the arithmetic limit (``benchmarks/arithmetic.py``) prices every matmul at the peak of one
large square matmul whose operands stay in cache. A pack's step cannot keep them there: it
keeps every layer's activations for its backward pass (about 140 MB at depth 50 for a pack of
20), so each layer's matmuls read weights, inputs and outputs from main memory, and run slower
than the same shapes on operands in cache. The floor is what the grid would cost if everything
but those matmuls were free: a wall time below it needs faster matmuls, not less overhead.

Method, per configuration of the grid (plain and highway nets × ``--depths``), on one thread:

* **in a step**: a real pack of the launch's size (mixed activations, real MNIST) trains
  ``--steps`` steps, timed, then as many under ``torch.profiler``, whose matmul kernels' own
  time (``bmm``, ``baddbmm``, ``baddbmm_``) per step is its *in-step* matmul time. One
  evaluation of the objective over ``--eval-examples`` training images is profiled the same
  way and scaled to the 70,000 images an epoch evaluates (its matmuls run over chunks of a
  fixed size, so their time is linear in the images);
* **in cache**: the same FLOPs at the speed of one hidden layer's three matmuls on one set of
  operands reused, the best a step's matmuls could do on this core.

The floor is the grid's sum (``trials`` ÷ K packs × steps an epoch × the in-step matmul time a
step, plus the evaluations) over the cores, with nothing else: no start-up, no tail, every core
busy. The arithmetic limit is printed beside it, from the same peak measurement as ``grid.py``.

    python benchmarks/matmul_floor.py --data-dir /work/shared/data/MNIST \\
        --json benchmarks/results/matmul-floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(_REPO))

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # without the profiler's start and stop lines
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from hwsearch.models.fc_config import KINDS  # noqa: E402
from hwsearch.training import Hyperparams, TrainConfig  # noqa: E402
from hwsearch.training.data import Dataset, load_dataset  # noqa: E402
from hwsearch.training.trainer import build_engine  # noqa: E402

try:
    from arithmetic import eval_flops_per_example, flops_per_trial_step, one_thread_peak
    from throughput import resident, warm
except ImportError:  # imported as benchmarks.matmul_floor
    from benchmarks.arithmetic import (
        eval_flops_per_example,
        flops_per_trial_step,
        one_thread_peak,
    )
    from benchmarks.throughput import resident, warm

MATMULS = ("aten::bmm", "aten::baddbmm", "aten::baddbmm_", "aten::mm", "aten::addmm")
BATCH = 128  # the FC recipe's
CPU = torch.device("cpu")


def pack_trials(model: str, k: int) -> list[Hyperparams]:
    """K trials as a study draws them: half relu, half tanh (grouped, as the trainer packs
    them), rates that keep every trial finite."""
    return [
        Hyperparams(lr=0.01 + 0.04 * i / max(k - 1, 1), momentum=0.9, lr_decay=0.9,
                    activation="relu" if i < k // 2 else "tanh", gate_bias=-3.0, seed=i)
        for i in range(k)
    ]


def matmul_seconds(run: Callable[[], object]) -> float:
    """CPU seconds spent in matmul kernels' own code while ``run`` runs."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMULS)
    return us / 1e6


def in_step(data: Dataset, model: str, depth: int, k: int, steps: int,
            eval_examples: int) -> dict[str, float]:
    """Matmul seconds of one step and of one epoch's evaluations, inside a real pack."""
    config = TrainConfig(model=model, depth=depth, batch_size=BATCH, device="cpu")
    engine, _ = build_engine(config, pack_trials(model, k), data, True)
    runner = resident(model, engine, data, BATCH, CPU)  # fed as training.fit feeds it
    warm(runner, 5, CPU)  # buffers made, caches as in a running epoch
    start = time.thread_time()
    warm(runner, steps, CPU)
    step_all = (time.thread_time() - start) / steps
    step_mm = matmul_seconds(lambda: warm(runner, steps, CPU)) / steps
    x, y = data.x_train[:eval_examples], data.y_train[:eval_examples]
    engine.evaluate(x, y)  # warm
    evaluated = len(data.y_train) + len(data.y_test)  # an epoch's: training and test sets
    eval_mm = matmul_seconds(lambda: engine.evaluate(x, y)) * evaluated / eval_examples
    return {"step_matmul_s": step_mm, "step_s": step_all, "eval_matmul_s": eval_mm}


def in_cache_flops(width: int, k: int, highway: bool, repeats: int = 200) -> float:
    """FLOP/s of a hidden layer's three matmuls (forward, input and weight gradients) on one
    set of operands, reused, so that they stay in cache."""
    rows, batch = (2 if highway else 1) * width, BATCH
    w = torch.randn(k, width, rows)
    x, g = torch.randn(k, width, batch), torch.randn(k, width, batch)
    z = torch.randn(k, rows, batch)
    bias = torch.randn(k, rows, 1)
    out = torch.empty(k, rows, batch)

    def layer() -> None:
        torch.baddbmm(bias, w.transpose(1, 2), x, out=out)
        g.baddbmm_(w, z)
        w.baddbmm_(x, z.transpose(1, 2), alpha=1e-9)

    for _ in range(10):
        layer()
    best = float("inf")
    for _ in range(5):
        start = time.thread_time()
        for _ in range(repeats):
            layer()
        best = min(best, (time.thread_time() - start) / repeats)
    return 3 * 2.0 * k * rows * width * batch / best


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="../shared/data/MNIST")
    p.add_argument("--models", default="plain,highway")
    p.add_argument("--depths", default="10,20,50,100")
    p.add_argument("--trials", type=int, default=40, help="per configuration")
    p.add_argument("--k", type=int, default=20, help="pack size (the launch's on 2 cores)")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=10, help="profiled steps per configuration")
    p.add_argument("--eval-examples", type=int, default=6000)
    p.add_argument("--target", type=float, default=300.0, help="the wall-time target, seconds")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    data = load_dataset("mnist", args.data_dir)
    load_before = os.getloadavg()[0]
    peak = one_thread_peak()
    steps_per_epoch = len(data.y_train) // BATCH
    evaluated = len(data.y_train) + len(data.y_test)
    rows, floor_s, limit_s, cache_s = [], 0.0, 0.0, 0.0
    for model in args.models.split(","):
        width, highway = KINDS[model].width, KINDS[model].highway
        cache_rate = in_cache_flops(width, args.k, highway)
        for depth in (int(d) for d in args.depths.split(",")):
            m = in_step(data, model, depth, args.k, args.steps, args.eval_examples)
            packs = -(-args.trials // args.k)
            seconds = packs * (steps_per_epoch * m["step_matmul_s"] + m["eval_matmul_s"])
            flops = args.trials * (
                steps_per_epoch * flops_per_trial_step(depth, width, BATCH, highway=highway)
                + evaluated * eval_flops_per_example(depth, width, highway=highway))
            rate = flops / seconds
            floor_s += seconds / args.cores
            limit_s += flops / peak / args.cores
            cache_s += flops / cache_rate / args.cores
            rows.append({"model": model, "depth": depth, **{a: round(b, 7) for a, b in m.items()},
                         "matmul_share_of_step": round(m["step_matmul_s"] / m["step_s"], 3),
                         "in_step_gflops": round(rate / 1e9, 1),
                         "in_cache_gflops": round(cache_rate / 1e9, 1)})
            r = rows[-1]
            print(f"{model:8s} d{depth:<4d} step {m['step_s'] * 1e3:7.1f} ms, of it "
                  f"matmuls {m['step_matmul_s'] * 1e3:6.1f} ms ({r['matmul_share_of_step']:.0%}); "
                  f"matmuls at {r['in_step_gflops']:5.1f} GFLOP/s in a step, "
                  f"{r['in_cache_gflops']:5.1f} in cache", flush=True)
    summary = {
        "peak_gflops_one_thread": round(peak / 1e9, 1),
        "cores": args.cores,
        "limit_s": round(limit_s, 1),
        "in_cache_floor_s": round(cache_s, 1),
        "in_step_floor_s": round(floor_s, 1),
        "target_s": args.target,
    }
    print(f"the grid on {args.cores} cores, nothing but matmuls: {floor_s:.0f} s at their speed "
          f"in a step, {cache_s:.0f} s at their speed in cache, {limit_s:.0f} s at the peak "
          f"({peak / 1e9:.1f} GFLOP/s a thread); target {args.target:.0f} s")
    result = {
        "meta": {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
        "summary": summary,
        "configurations": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
