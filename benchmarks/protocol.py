"""Time Figure 1's protocol end to end through the CLI: ``hwsearch launch`` as a subprocess.

Builds and runs (flags configurable; anything after ``--`` is passed on as is)::

    hwsearch launch --dataset mnist --data-dir D --models plain,highway --depths 10,20,50,100
        --trials 40 --epochs E --pack K --storage sqlite:///TMP/x.db
        [--limit-train N] [--gpus-per-trial G] [--batch-size B]

and reports its wall time and trial-steps/s, counting ``models × depths × trials × epochs ×
(training examples // batch)`` trial-steps (trials stopped early for diverging count in full,
so this is an upper bound on the work done), and where the time went, from the launch's own
``[hwsearch] time:`` line: when Ray was ready, when the first epoch was reported, when the
packs were done, and, summed over packs, data loading, training, evaluation, and the
launcher's recording. ``--dry-run`` prints the command and stops.

    python benchmarks/protocol.py --epochs 1 --pack 40 --limit-train 6000 --json /tmp/proto.json
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

TRAIN_EXAMPLES = {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000, "cifar100": 50000}


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--hwsearch",
        default=None,
        help="the CLI to run (default: hwsearch on PATH, else python -m hwsearch)",
    )
    p.add_argument("--dataset", default="mnist", choices=sorted(TRAIN_EXAMPLES))
    p.add_argument("--data-dir", default="../shared/data/MNIST")
    p.add_argument("--models", default="plain,highway")
    p.add_argument("--depths", default="10,20,50,100")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--pack", type=int, default=40)
    p.add_argument("--storage", default=None,
                   help="a URL without a password (hwsearch refuses one on the command line: "
                   "use PGPASSWORD or ~/.pgpass); default: sqlite:///<fresh temp dir>/x.db")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--gpus-per-trial", default=None, help="passed on when given")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="passed on when given; counts trial-steps (default 128)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds before the run is killed")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--dry-run", action="store_true", help="print the command only")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    return args, extra


def command(args: argparse.Namespace, extra: Sequence[str], storage: str) -> list[str]:
    if args.hwsearch:
        cli = shlex.split(args.hwsearch)
    else:
        found = shutil.which("hwsearch")
        cli = [found] if found else [sys.executable, "-m", "hwsearch"]
    cmd = [
        *cli,
        "launch",
        "--dataset",
        args.dataset,
        "--data-dir",
        args.data_dir,
        "--models",
        args.models,
        "--depths",
        args.depths,
        "--trials",
        str(args.trials),
        "--epochs",
        str(args.epochs),
        "--pack",
        str(args.pack),
        "--storage",
        storage,
    ]
    for flag, value in (
        ("--limit-train", args.limit_train),
        ("--gpus-per-trial", args.gpus_per_trial),
        ("--batch-size", args.batch_size),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    return [*cmd, *extra]


def trial_steps(args: argparse.Namespace) -> int:
    n = TRAIN_EXAMPLES[args.dataset]
    n = min(n, args.limit_train) if args.limit_train else n
    batch = min(args.batch_size or 128, n)
    runs = len(args.models.split(",")) * len(args.depths.split(",")) * args.trials
    return runs * args.epochs * (n // batch)


TIME_FIELDS = {
    "ray_ready_at": r"Ray ready at ([\d.]+) s",
    "first_epoch_at": r"first epoch reported at ([\d.]+) s",
    "packs_done_at": r"packs done at ([\d.]+) s",
    "total": r"total ([\d.]+) s",
    "data": r"data ([\d.]+) s",
    "train": r"train ([\d.]+) s",
    "evaluate": r"evaluate ([\d.]+) s",
    "record": r"record ([\d.]+) s",
}


def parse_time_line(line: str) -> dict[str, float]:
    """The numbers of a ``[hwsearch] time:`` line (missing marks are left out)."""
    out = {}
    for key, pattern in TIME_FIELDS.items():
        found = re.search(pattern, line)
        if found:
            out[key] = float(found.group(1))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    storage = args.storage or f"sqlite:///{tempfile.mkdtemp(prefix='hwsearch-protocol-')}/x.db"
    cmd = command(args, extra, storage)
    print("$ " + shlex.join(cmd), flush=True)
    if args.dry_run:
        return 0
    start = time.perf_counter()
    breakdown: dict[str, float] = {}
    try:
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:  # passed on as it comes; the time line is also parsed
            sys.stderr.write(line)
            if line.startswith("[hwsearch] time:"):
                breakdown = parse_time_line(line)
        returncode = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        returncode = -9
        print(f"protocol: killed after {args.timeout} s", file=sys.stderr)
    wall = time.perf_counter() - start
    steps = trial_steps(args)
    result = {
        "command": cmd,
        "returncode": returncode,
        "wall_seconds": wall,
        "trial_steps": steps,
        "trial_steps_per_s": steps / wall,
        "breakdown_seconds": breakdown,
    }
    if breakdown:
        print("protocol: where the time went (s): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.1f}" for k, v in breakdown.items()))
    print(
        f"protocol: exit {returncode}, {wall:.1f} s wall, {steps} trial-steps, "
        f"{steps / wall:.1f} trial-steps/s" + ("" if returncode == 0 else " (run failed)")
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
