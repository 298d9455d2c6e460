"""Trial-steps per second of three ways to train Figure 1's highway nets, in one run.

(a) ``conventional``: how users write it: an ``nn.Module`` of ``nn.Linear`` layers, a
    ``DataLoader`` over a ``TensorDataset`` (host memory) with ``shuffle=True``,
    ``torch.optim.SGD`` with momentum, ``ExponentialLR`` stepped per epoch, ``loss.item()`` per
    step (the PyTorch tutorials' loop); one trial at a time.
(b) ``single``: this project's :class:`SingleEngine` (an ``nn.Module`` + ``torch.optim.SGD``)
    fed as ``training.fit`` feeds it: data resident on the device, batches gathered by index.
(c) ``packed``: :class:`PackedEngine` packs of each ``--k``, fed the same way, through
    :func:`training.compiled.compile_engine`: eagerly, or with ``--compile`` as ``--compile-mode``
    says (CUDA graphs by default on CUDA). ``--stock`` also times, eagerly, the plain
    ``PackedEngine`` (into ``meta.packed_stock``).

All train highway nets of width 50 and depth ``--depth`` (tanh, gate bias −3) on the same data:
real MNIST from ``--data-dir``, or synthetic data of MNIST's shape when it is absent (with a
notice). A trial-step is one SGD step of one trial: a pack of K doing N steps in s seconds runs
``K·N/s`` trial-steps/s.

Timing: every trainable is built and warmed up (``--warmup`` steps), then ``--repeats`` rounds
each time ``--steps`` steps of every trainable in turn (synchronised on CUDA), so load from other
processes spreads over all of them; each figure is its best round. The resident-data loops draw
an epoch's shuffles (K ``randperm`` on the host, moved to the device) ahead of the clock; that
cost is timed once and charged pro rata (``steps / steps_per_epoch`` of it), as ``fit`` pays it
once an epoch. Per-epoch test evaluation is left out of all of them. The objective's
evaluation (every trial's cross-entropy over the whole training set, which ``fit`` runs after
each epoch) is timed once per round for (b) and (c), and reported beside each as seconds and
as its share of an epoch (evaluation ÷ (an epoch of steps + evaluation)).

    python benchmarks/throughput.py --device cpu --depth 50 --steps 50 --k 8 40 --json /tmp/cpu.json

``--model`` a conv preset (``mnist-highway-10``, at ``--width``) times the same three for the
authors' conv net under its recipe: (a) ``ConvHighwayNet`` with a ``DataLoader``,
``torch.optim.SGD`` (Nesterov, weight decay) and ``MultiStepLR``; (b) the single engine; (c)
packs of grouped convolutions (:class:`PackedConvEngine`)::

    python benchmarks/throughput.py --model mnist-highway-10 --width 16 --threads 1 \
        --batch-size 100 --steps 5 --k 2 4 --json /tmp/conv.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(_REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from hwsearch.models import PRESETS, preset  # noqa: E402
from hwsearch.models.conv import ConvHighwayNet  # noqa: E402
from hwsearch.training import DataError, Hyperparams, TrainConfig, fc_step  # noqa: E402
from hwsearch.training.compiled import MODES, compile_engine  # noqa: E402
from hwsearch.training.data import Dataset, load_dataset  # noqa: E402
from hwsearch.training.engines import Engine  # noqa: E402
from hwsearch.training.loop import RowGather, shuffle_generator  # noqa: E402
from hwsearch.training.trainer import build_engine  # noqa: E402

try:
    from arithmetic import flops_per_trial_step, limit, peak_flops  # noqa: E402
except ImportError:  # imported as benchmarks.throughput
    from benchmarks.arithmetic import flops_per_trial_step, limit, peak_flops  # noqa: E402

ACTIVATION, GATE_BIAS, WIDTH = "tanh", -3.0, 50  # Hyperparams' defaults; the paper's width


# -- (a) the conventional trainable ---------------------------------------------------------


class Highway(nn.Module):
    """y = H(x)·T(x) + x·(1 − T(x)), the textbook way."""

    def __init__(self, width: int, gate_bias: float) -> None:
        super().__init__()
        self.h = nn.Linear(width, width)
        self.t = nn.Linear(width, width)
        nn.init.constant_(self.t.bias, gate_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.t(x))
        return torch.tanh(self.h(x)) * t + x * (1 - t)


class HighwayMLP(nn.Module):
    def __init__(
        self,
        depth: int,
        width: int = WIDTH,
        in_features: int = 784,
        num_classes: int = 10,
        gate_bias: float = GATE_BIAS,
    ) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.Tanh())
        self.layers = nn.Sequential(*(Highway(width, gate_bias) for _ in range(depth - 1)))
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(self.first(x)))


@dataclass
class Runner:
    """One trainable: ``step()`` takes one SGD step of its ``k`` trials."""

    name: str
    k: int
    step: Callable[[], None]
    overhead: float = 0.0  # seconds charged per step on top of the timed ones
    loss: Callable[[], float] = lambda: 0.0
    rounds: list[float] = field(default_factory=list)  # trial-steps/s of each timed round
    evaluate: Callable[[], object] | None = None  # the objective: the whole training set
    steps_per_epoch: int = 0
    eval_rounds: list[float] = field(default_factory=list)  # seconds of each evaluation

    @property
    def best(self) -> float:
        return max(self.rounds)

    def eval_share(self) -> tuple[float, float] | None:
        """Best evaluation seconds, and as a fraction of an epoch of this runner's steps."""
        if not self.eval_rounds:
            return None
        seconds = min(self.eval_rounds)
        epoch = self.steps_per_epoch * self.k / self.best
        return seconds, seconds / (epoch + seconds)


def conventional(data: Dataset, args: argparse.Namespace, device: torch.device) -> Runner:
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    dataset = TensorDataset(data.x_train.to(dtype), data.y_train)  # host memory, as usual
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
    model: nn.Module
    if args.model in PRESETS:  # the conv net under its solver, as a user would set it up
        model = ConvHighwayNet(preset(args.model, width=args.width)).to(device, dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                    weight_decay=0.001)
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, [600, 1200], 0.1)
    else:
        model = HighwayMLP(args.depth).to(device, dtype)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from loader
            scheduler.step()  # once per epoch

    stream = batches()
    running_loss = 0.0

    def step() -> None:
        nonlocal running_loss
        xb, yb = next(stream)
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()

    return Runner("conventional (a)", 1, step, loss=lambda: running_loss)


# -- (b), (c): engines fed as training.fit feeds them ---------------------------------------


def trials(k: int, model: str = "highway", mixed: bool = False) -> list[Hyperparams]:
    """K stable trials with different learning rates and seeds (a pack's usual spread); with
    ``mixed``, half relu and half tanh, as a study's random search draws them, grouped by
    activation as the trainer packs them (``train_trials``; until 2026-12-06 they alternated,
    which made every layer run K one-trial activation kernels)."""
    if model in PRESETS:
        return [Hyperparams.for_model(model, lr=0.005 + 0.02 * i / max(k - 1, 1), seed=i)
                for i in range(k)]
    return [
        Hyperparams(
            lr=0.01 + 0.09 * i / max(k - 1, 1),
            momentum=0.9,
            lr_decay=0.9,
            activation=("relu" if i < k // 2 else "tanh") if mixed else ACTIVATION,
            gate_bias=GATE_BIAS,
            seed=i,
        )
        for i in range(k)
    ]


def make_engine(
    data: Dataset, args: argparse.Namespace, k: int, packed: bool, mixed: bool = False
) -> Engine:
    conv = args.model in PRESETS
    config = TrainConfig(
        model=args.model,
        depth=args.depth,
        width=args.width if conv else WIDTH,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
    )
    engine, _ = build_engine(config, trials(k, args.model, mixed), data, packed)
    return engine


def resident(name: str, engine: Engine, data: Dataset, batch: int, device: torch.device) -> Runner:
    """``engine`` driven as ``training.fit`` drives it (resident data, index gathers)."""
    k, n, batch = engine.k, len(data.y_train), min(batch, len(data.y_train))
    per_epoch = n // batch
    gens = [shuffle_generator(i) for i in range(k)]
    _sync(device)
    start = time.perf_counter()
    order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
    _sync(device)
    order_seconds = time.perf_counter() - start
    order = order[:, : per_epoch * batch].view(k, per_epoch, batch)  # reused epoch after epoch
    loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
    correct = torch.zeros(k, device=device, dtype=torch.int64)
    batches = RowGather(data.x_train, k * batch)
    s = 0

    def step() -> None:
        nonlocal s
        idx = order[:, s % per_epoch]  # (K, B)
        losses, right = engine.step(batches.gather(idx), data.y_train[idx], s / per_epoch)
        loss_sum.add_(losses)
        correct.add_(right)
        s += 1

    return Runner(name, k, step, order_seconds / per_epoch, lambda: loss_sum.sum().item(),
                  evaluate=lambda: engine.evaluate(data.x_train, data.y_train),
                  steps_per_epoch=per_epoch)


# -- plumbing --------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm(runner: Runner, steps: int, device: torch.device) -> None:
    for _ in range(steps):
        runner.step()
    _sync(device)


def time_round(runner: Runner, steps: int, device: torch.device) -> None:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        runner.step()
    _sync(device)
    seconds = time.perf_counter() - start + runner.overhead * steps
    runner.rounds.append(runner.k * steps / seconds)


def time_evaluation(runner: Runner, device: torch.device) -> None:
    """One evaluation of the objective (every trial's cross-entropy over the whole training
    set, what ``fit`` does after each epoch), timed."""
    if runner.evaluate is None:
        return
    _sync(device)
    start = time.perf_counter()
    runner.evaluate()
    _sync(device)
    runner.eval_rounds.append(time.perf_counter() - start)


def load(args: argparse.Namespace) -> Dataset:
    try:
        data = load_dataset("mnist", args.data_dir)
    except DataError as e:
        print(
            f"notice: real MNIST not found ({e}); using synthetic random data of MNIST's "
            "shape (60000 × 1 × 28 × 28, 10 classes): timings hold, losses mean nothing",
            file=sys.stderr,
        )
        gen = torch.Generator().manual_seed(0)
        data = Dataset(
            "mnist-synthetic",
            torch.rand(60000, 1, 28, 28, generator=gen),
            torch.randint(0, 10, (60000,), generator=gen),
            torch.rand(10000, 1, 28, 28, generator=gen),
            torch.randint(0, 10, (10000,), generator=gen),
            10,
        )
    return data.limit_train(args.limit_train)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--model", choices=("highway", *PRESETS), default="highway",
                   help="the FC highway net, or a conv preset under its recipe")
    p.add_argument("--width", type=int, default=0, help="conv preset width; 0: its own")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--steps", type=int, default=50, help="timed steps of each round")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; the best counts")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--k", type=int, nargs="+", default=[8, 40], help="pack sizes")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--data-dir", default="../shared/data/MNIST")
    p.add_argument("--limit-train", type=int, default=None, help="first N training examples")
    p.add_argument("--compile", action="store_true", help="compile the packs (training.compiled)")
    p.add_argument(
        "--compile-mode",
        choices=MODES,
        default="auto",
        help="with --compile; auto: CUDA graphs on cuda, eager on cpu",
    )
    p.add_argument(
        "--stock",
        action="store_true",
        help="also time PackedEngine eagerly, without compile_engine (meta.packed_stock)",
    )
    p.add_argument(
        "--mixed",
        action="store_true",
        help="also time each pack with relu and tanh trials mixed (a study's real draw)",
    )
    p.add_argument(
        "--torch-tanh",
        action="store_true",
        help="also time each FC pack stepping with torch's own tanh (the CPU step's form before "
        "2026-12-06; now 2*sigmoid(2z) - 1), side by side",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    p.add_argument("--skip-conventional", action="store_true")
    p.add_argument("--skip-single", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    p.add_argument("--smoke-test", action="store_true", help="tiny sizes, seconds")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.depth, args.steps, args.warmup, args.repeats = 3, 3, 4, 2
        args.k, args.batch_size = [2, 3], 16
        args.limit_train = min(args.limit_train or 512, 512)
        if args.model in PRESETS:
            args.width = args.width or 4
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA device")
    return args


def build(
    args: argparse.Namespace, data: Dataset, device: torch.device, failures: dict[str, str]
) -> list[Runner]:
    """Every trainable asked for, warmed up; a pack whose fast path fails falls back to eager."""
    mode = args.compile_mode if args.compile else "eager"
    on_device = data.to(device, getattr(torch, args.dtype))
    batch = args.batch_size

    def pack(k: int, mode: str, mixed: bool = False) -> Runner:
        engine = compile_engine(make_engine(on_device, args, k, True, mixed), mode)
        name = f"mixed k={k} (c)" if mixed else f"packed k={k} (c)"
        return resident(name, engine, on_device, batch, device)

    def torch_tanh_pack(k: int, mixed: bool) -> Runner:
        """The same pack, its step built with torch's tanh (the step resolves its activations
        when it is made)."""
        chosen = fc_step.inplace_activation
        fc_step.inplace_activation = lambda name, _: getattr(torch, f"{name}_")
        try:
            runner = pack(k, mode, mixed)
        finally:
            fc_step.inplace_activation = chosen
        runner.name = f"torch-tanh {'mixed ' if mixed else ''}k={k}"
        return runner

    runners: list[Runner] = []
    if not args.skip_conventional:
        runners.append(conventional(data, args, device))
    if not args.skip_single:
        runners.append(
            resident(
                "single engine (b)",
                make_engine(on_device, args, 1, False),
                on_device,
                batch,
                device,
            )
        )
    for runner in runners:
        warm(runner, args.warmup, device)
    for k in args.k:
        runner = pack(k, mode)
        try:
            warm(runner, args.warmup, device)
        except Exception as e:  # keep the run's other figures; say loudly what failed
            if mode == "eager":
                raise
            traceback.print_exc()
            failures[str(k)] = f"{type(e).__name__}: {e}"
            print(f"  k={k}: {mode} failed; timing the eager engine instead", flush=True)
            runner = pack(k, "eager")
            warm(runner, args.warmup, device)
        runners.append(runner)
        if args.torch_tanh and args.model not in PRESETS:
            runners.append(torch_tanh_pack(k, mixed=False))
            warm(runners[-1], args.warmup, device)
        if args.mixed and args.model not in PRESETS:  # a conv recipe fixes relu
            runners.append(pack(k, mode, mixed=True))
            warm(runners[-1], args.warmup, device)
            if args.torch_tanh:
                runners.append(torch_tanh_pack(k, mixed=True))
                warm(runners[-1], args.warmup, device)
        if args.stock:
            runners.append(
                resident(
                    f"stock packed k={k}",
                    make_engine(on_device, args, k, True),
                    on_device,
                    batch,
                    device,
                )
            )
            warm(runners[-1], args.warmup, device)
    return runners


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load(args)
    mode = args.compile_mode if args.compile else "eager"
    print(
        f"{data.name}: {len(data.y_train)} training examples; "
        + (f"{args.model} width {args.width or 'default'}" if args.model in PRESETS
           else f"highway width {WIDTH} depth {args.depth}")
        + f", batch {args.batch_size}, {args.dtype}; best of {args.repeats} rounds "
        f"of {args.steps} steps after {args.warmup}; device {args.device}, "
        f"{torch.get_num_threads()} threads; torch {torch.__version__}; packs: {mode}",
        flush=True,
    )
    failures: dict[str, str] = {}
    runners = build(args, data, device, failures)
    # The peak, before and after the rounds: a shared CPU's clock moves between runs (82 to 103
    # GFLOP/s on one thread, the same hour), and the higher of the two gives the lower share.
    peak_before = peak_flops(device, getattr(torch, args.dtype))
    for r in range(args.repeats):
        for runner in runners:
            time_round(runner, args.steps, device)
            time_evaluation(runner, device)
        print(
            f"  round {r + 1}: "
            + ", ".join(f"{x.name.split(' (')[0]} {x.rounds[-1]:.1f}" for x in runners),
            flush=True,
        )
    for runner in runners:
        if not math.isfinite(runner.loss()):
            print(
                f"warning: {runner.name} trained to a non-finite loss; its timing may not be "
                "typical",
                file=sys.stderr,
            )

    rates = {
        key: x.best
        for x in runners
        for key, prefix in (("conventional", "conventional"), ("single", "single"))
        if x.name.startswith(prefix)
    }
    packed = {str(x.k): x.best for x in runners if x.name.startswith("packed")}
    stock = {str(x.k): x.best for x in runners if x.name.startswith("stock")}
    mixed = {str(x.k): x.best for x in runners if x.name.startswith("mixed")}
    torch_tanh = {x.name.removeprefix("torch-tanh "): x.best for x in runners
                  if x.name.startswith("torch-tanh")}
    conv = args.model in PRESETS  # the derivation covers the FC nets only
    per_step = 0.0 if conv else flops_per_trial_step(args.depth, WIDTH, args.batch_size)
    peak_after = peak_flops(device, getattr(torch, args.dtype))
    peak = max(peak_before, peak_after)
    at_limit = limit(per_step, peak) if per_step else 0.0
    evaluation = {
        ("single" if x.k == 1 and x.name.startswith("single") else str(x.k)): {
            "seconds": round(share[0], 4), "share_of_epoch": round(share[1], 4)}
        for x in runners
        if not x.name.startswith(("stock", "mixed", "torch-tanh")) and (share := x.eval_share())
    }
    result: dict[str, object] = {
        **rates,
        "packed": packed,
        **({"mixed": mixed} if mixed else {}),
        **({"torch_tanh": torch_tanh} if torch_tanh else {}),
        "evaluation": evaluation,
        **({} if conv else {"arithmetic": {
            "flops_per_trial_step": per_step,
            "peak_gflops": round(peak / 1e9, 2),
            "peak_gflops_before_after": [round(peak_before / 1e9, 2), round(peak_after / 1e9, 2)],
            "limit_trial_steps_per_s": round(at_limit, 1),
            "share_of_limit": {x.name: round(x.best / at_limit, 4) for x in runners},
        }}),
        "meta": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "data": data.name,
            "model": args.model,
            "depth": args.depth,
            "width": args.width if args.model in PRESETS else WIDTH,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "dtype": args.dtype,
            "compile": mode,
            "loadavg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "rounds": {x.name: [round(v, 2) for v in x.rounds] for x in runners},
            **({"packed_stock": stock} if stock else {}),
            **({"compile_failed": failures} if failures else {}),
        },
    }
    print(table(runners, at_limit))
    if at_limit:
        print(
            f"arithmetic limit: {per_step / 1e6:.1f} MFLOP per trial-step at a measured peak "
            f"of {peak / 1e9:.1f} GFLOP/s (the higher of {peak_before / 1e9:.1f} before the "
            f"rounds and {peak_after / 1e9:.1f} after) = {at_limit:.0f} trial-steps/s "
            "(benchmarks/arithmetic.py)"
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


def cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def table(runners: Sequence[Runner], at_limit: float) -> str:
    base = next((x.best for x in runners if x.name.startswith("conventional")), None)
    lines = [f"{'trainable':<22}{'trial-steps/s':>15}{'ms/step':>10}{'× (a)':>8}"
             f"{'of limit':>10}{'objective eval':>16}{'of an epoch':>13}"]
    for x in runners:
        ratio = f"{x.best / base:.2f}" if base else "-"
        share = x.eval_share()
        evaluation = f"{share[0]:>15.2f}s{share[1]:>12.1%}" if share else f"{'-':>16}{'-':>13}"
        lines.append(f"{x.name:<22}{x.best:>15.1f}{1000 * x.k / x.best:>10.2f}{ratio:>8}"
                     + (f"{x.best / at_limit:>10.1%}" if at_limit else f"{'-':>10}")
                     + evaluation)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
