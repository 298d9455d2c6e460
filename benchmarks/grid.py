"""The Figure 1 grid through the real ``hwsearch launch``: wall time, where it went, the share
of the arithmetic limit, and exact counts.

Runs, on SQLite in a fresh directory and a local Ray, what a user runs::

    hwsearch launch --dataset mnist --data-dir D --models plain,highway --depths 10,20,50,100
        --trials 40 --epochs 1 --storage sqlite:///TMP/grid.db

(``--fraction F`` runs ``round(40·F)`` trials per configuration instead, ``--trials``,
``--depths``, ``--models``, ``--epochs`` and ``--limit-train`` change the grid; anything after
``--`` goes to the launch as is). Then it reads the studies back with ``hwsearch status`` and
checks that each has exactly its target of finished trials and none running.

It prints and writes (``--json``):

* the wall time of the command, Ray's start and shutdown included;
* the time line from the launch's own ``[hwsearch] time:`` line: start-up (Ray ready, first
  epoch reported), and summed over packs: data loading, training, evaluation; the launcher's
  recording into the database;
* the arithmetic limit: the grid's matmul FLOPs (training as in ``benchmarks/arithmetic.py``,
  plus one forward pass over the training and test sets per trial and epoch) at the measured
  one-thread matmul peak times the cores, and the run's share of it (limit ÷ wall);
* how busy the cores were: CPU seconds of the launch and every process it started (sampled
  from /proc) ÷ (wall × cores), and the packs' own seconds ÷ (wall × cores); on a shared
  machine the CPU seconds also say what the run cost, whatever the others took;
* the load average before and after (the machine is shared: every figure needs it).

    python benchmarks/grid.py --json benchmarks/results/grid-cpu.json
    python benchmarks/grid.py --fraction 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(_HERE))

from arithmetic import (  # noqa: E402
    eval_flops_per_example,
    flops_per_trial_step,
    one_thread_peak,
    peak_flops,
)
from protocol import parse_time_line  # noqa: E402

REPO = _HERE.parent
WIDTH = {"highway": 50, "plain": 71}  # the paper's, as the launch uses them
EXAMPLES = {"mnist": (60000, 10000)}  # training, test


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "MNIST"))
    p.add_argument("--models", default="plain,highway")
    p.add_argument("--depths", default="10,20,50,100")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--fraction", type=float, default=None,
                   help="run round(trials × F) trials per configuration")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--gpu", action="store_true",
                   help="train on the GPU (--device cuda); the limit is the GPU's matmul peak")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--dry-run", action="store_true", help="print the command only")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.fraction is not None:
        args.trials = max(1, round(args.trials * args.fraction))
    return args, extra


def cli() -> list[str]:
    found = shutil.which("hwsearch") or str(Path(sys.executable).with_name("hwsearch"))
    return [found] if Path(found).exists() else [sys.executable, "-m", "hwsearch"]


def launch_command(args: argparse.Namespace, storage: str, extra: Sequence[str]) -> list[str]:
    cmd = [*cli(), "launch", "--storage", storage, "--dataset", "mnist", "--data-dir",
           args.data_dir, "--models", args.models, "--depths", args.depths, "--trials",
           str(args.trials), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--progress-every", "60"]
    if args.limit_train:
        cmd += ["--limit-train", str(args.limit_train)]
    if args.gpu:
        cmd += ["--device", "cuda"]
    return [*cmd, *extra]


def grid_flops(args: argparse.Namespace) -> dict[str, float]:
    """Matmul FLOPs of the whole grid: training, and evaluating train and test sets."""
    n_train, n_test = EXAMPLES["mnist"]
    n_train = min(n_train, args.limit_train or n_train)
    steps = n_train // args.batch_size
    train = evaluate = 0.0
    for model in args.models.split(","):
        for depth in (int(d) for d in args.depths.split(",")):
            highway = model == "highway"
            per_step = flops_per_trial_step(depth, WIDTH[model], args.batch_size,
                                            highway=highway)
            per_example = eval_flops_per_example(depth, WIDTH[model], highway=highway)
            runs = args.trials * args.epochs
            train += runs * steps * per_step
            evaluate += runs * (n_train + n_test) * per_example
    return {"train": train, "evaluate": evaluate, "total": train + evaluate}


def counts(storage: str) -> list[dict[str, object]]:
    """Each study's trials per state, read back from the database."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from hwsearch.app.storage_url import resolve_storage
    from hwsearch.storage import open_storage

    store = open_storage(resolve_storage(storage, None))
    try:
        rows = []
        for name in store.study_names():
            c = store.counts(name)
            rows.append({"study": name, "finished": c.finished, "complete": c.complete,
                         "diverged": c.diverged, "running": c.running, "failed": c.failed,
                         "best": c.best})
        return rows
    finally:
        store.close()


def check_counts(rows: list[dict[str, object]], args: argparse.Namespace) -> list[str]:
    """What is wrong with the studies' counts (nothing: an empty list)."""
    want = len(args.models.split(",")) * len(args.depths.split(","))
    problems = [] if len(rows) == want else [f"{len(rows)} studies, expected {want}"]
    for row in rows:
        if row["finished"] != args.trials or row["running"]:
            problems.append(f"{row['study']}: {row['finished']} finished, {row['running']} "
                            f"running; expected {args.trials} and 0")
    return problems


class TreeCPU:
    """CPU seconds of a process and all its descendants (Ray's workers are the launch's
    grandchildren, never reaped by it), sampled from /proc every ``every`` seconds: a process
    that ends between samples loses at most that much."""

    def __init__(self, root: int, every: float = 1.0) -> None:
        self.root, self.every = root, every
        self.seen: dict[int, float] = {}  # pid -> its CPU seconds when last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> TreeCPU:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick
        for pid in cpu:
            p, depth = pid, 0
            while p > 1 and p != self.root and depth < 64:
                p, depth = parents.get(p, 0), depth + 1
            if p == self.root:
                self.seen[pid] = cpu[pid]


def measure_peak(gpu: bool) -> float:
    """FLOP/s: the GPU's float32 matmul peak, or one CPU thread's."""
    if not gpu:
        return one_thread_peak()
    import torch

    return peak_flops(torch.device("cuda"))


def device_name(gpu: bool) -> str:
    if gpu:
        import torch

        return torch.cuda.get_device_name()
    return f"this {os.cpu_count()}-core CPU"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="hwsearch-grid-")
    storage = f"sqlite:///{tmp}/grid.db"
    cmd = launch_command(args, storage, extra)
    print("$ " + shlex.join(cmd), flush=True)
    if args.dry_run:
        return 0
    cores = 1 if args.gpu else os.cpu_count() or 1
    peak_before = measure_peak(args.gpu)
    load_before = loadavg()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.setdefault("RAY_AUTH_MODE", "disabled")
    timeline: dict[str, float] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
    assert proc.stderr is not None
    with TreeCPU(proc.pid) as tree:
        for line in proc.stderr:  # passed on as it comes; the time line is also parsed
            sys.stderr.write(line)
            if line.startswith("[hwsearch] time:"):
                timeline = parse_time_line(line)
                tree.sample()  # before Ray's processes go
        try:
            returncode = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = -9
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = max(tree.seconds, usage.ru_utime + usage.ru_stime)
    load_after = loadavg()
    peak = max(peak_before, measure_peak(args.gpu))
    rows = counts(storage) if returncode == 0 else []
    problems = check_counts(rows, args) if returncode == 0 else [f"exit {returncode}"]
    flops = grid_flops(args)
    limit = flops["total"] / (peak * cores)
    packs = timeline.get("train", 0.0) + timeline.get("evaluate", 0.0)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(args.gpu),
        "command": cmd,
        "returncode": returncode,
        "wall_seconds": round(wall, 1),
        "timeline_seconds": timeline,
        "counts_ok": not problems,
        "count_problems": problems,
        "studies": rows,
        "arithmetic": {
            "gflop": {k: round(v / 1e9, 1) for k, v in flops.items()},
            "peak_gflops": round(peak / 1e9, 1),  # a GPU's, or one CPU thread's
            "cores": cores,
            "limit_seconds": round(limit, 1),
            "share_of_limit": round(limit / wall, 3),
        },
        "cores_busy": {
            "cpu_seconds": round(cpu_seconds, 1),
            "share": round(cpu_seconds / (wall * cores), 3),
            "packs_share": round(packs / (wall * cores), 3),
        },
        "loadavg": {"before": load_before, "after": load_after},
    }
    print(f"grid: exit {returncode}, {wall:.1f} s wall; counts "
          + ("exact" if not problems else "WRONG: " + "; ".join(problems)))
    if timeline:
        print("grid: time line (s): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.1f}" for k, v in timeline.items()))
    unit = "GPU" if args.gpu else "cores, one thread's peak"
    print(f"grid: {flops['total'] / 1e12:.1f} TFLOP of matmuls ({flops['train'] / 1e12:.1f} "
          f"training, {flops['evaluate'] / 1e12:.1f} evaluating); peak {peak / 1e9:.1f} "
          f"GFLOP/s × {cores} {unit}: limit {limit:.0f} s, {limit / wall:.0%} of it reached")
    print(f"grid: cores busy {result['cores_busy']['share']:.0%} (packs alone "
          f"{result['cores_busy']['packs_share']:.0%}); load average before {load_before}, "
          f"after {load_after}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if returncode == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
