"""How the bookkeeping and the read commands scale with the size of a study.

For each backend (``--backends``: SQLite, and PostgreSQL at ``$HWSEARCH_TEST_PG``, in a
database of its own, dropped afterwards) and each N (``--sizes``, default 100 1000 10000): a
fresh database holding one highway study of N finished trials with ``--epochs`` per-epoch
records each, written in the trial record's layout (``tests/hwtest/stored_trials.py``:
``finished_trial`` and ``add_finished_trials``), the layout the service writes. Then it
times, on that study:

* ``ask round``: what a launcher does to hand out one pack (claim the study, fail stale trials,
  count, ask ``--pack`` trials), as the pack planner does it (no Ray);
* ``status``, ``best``, ``trials --format csv``, ``report``: the commands, as users run them
  (a subprocess each, interpreter start included): wall seconds, and their CPU seconds
  (``... cpu``), which waiting for a core on a shared machine does not inflate;
* ``status query``, ``best query``, ``trials query``: the same answers computed in this
  process, so the database's share is told apart from the CLI's start.

Prints a table and, with ``--json``, writes the figures.

    python benchmarks/scale.py --sizes 100 1000 10000 --backends sqlite postgresql \\
        --json benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
for _path in (_REPO, _REPO / "tests"):  # runnable as a plain script from a checkout
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

STUDY = "mnist-highway-d50"
BATCH = 250  # trials per transaction while building
try:
    from pgdb import ADMIN, own_database  # noqa: E402
except ImportError:  # imported as a module of the benchmarks package
    from benchmarks.pgdb import ADMIN, own_database  # noqa: E402


def build(url: str, n: int, epochs: int, seed: int = 0) -> float:
    """The study of ``n`` finished trials; returns the seconds it took to write."""
    import numpy as np

    from hwsearch.search.space import SearchSpace
    from hwsearch.search.studies import open_study
    from hwsearch.storage import open_storage
    from hwsearch.storage import records as rec
    from hwsearch.training import TrainConfig
    from hwtest import stored_trials

    rng = np.random.default_rng(seed)
    space = SearchSpace()
    config = TrainConfig(model="highway", depth=50, epochs=epochs)
    store = open_storage(url)
    open_study(store.optuna, STUDY, config, seed, space)
    dists = space.distributions("highway")
    start = time.perf_counter()
    batch: list = []
    for i in range(n):
        params = {"lr": float(10 ** rng.uniform(-6, 0)), "momentum": float(rng.uniform(0, .99)),
                  "lr_decay": float(10 ** rng.uniform(-3, 0)),
                  "activation": str(rng.choice(["relu", "tanh"])),
                  "gate_bias": float(rng.uniform(-10, -1))}
        final = float(10 ** rng.uniform(-3, 0.3))
        curve = np.geomspace(2.3, final, epochs)
        records = [{"epoch": e + 1, "train_loss": float(v), "running_loss": float(v) * 1.1,
                    "train_accuracy": 0.9, "test_accuracy": 0.9, "lr": 0.01, "seconds": 1.0,
                    "eval_seconds": 0.2} for e, v in enumerate(curve)]
        attrs = {rec.RAY_NODE_IP: "127.0.0.1", rec.PACK_SIZE: 40}
        batch.append(stored_trials.finished_trial(params, dists, records, attrs=attrs))
        if len(batch) == BATCH or i == n - 1:
            stored_trials.add_finished_trials(store, STUDY, batch)
            batch = []
    seconds = time.perf_counter() - start
    store.close()
    return seconds


def time_ask_round(url: str, pack: int, rounds: int = 3) -> float:
    """One pack's worth of asking on the full study (the target is raised by ``pack``): the
    median of ``rounds``."""
    import optuna

    from hwsearch.search.planner import PackPlanner, StudyPlan
    from hwsearch.search.sampler import SeededRandomSampler
    from hwsearch.search.space import SearchSpace
    from hwsearch.storage import open_storage

    class Quiet:
        def add(self, trial_id: int) -> None: ...

        def discard(self, trial_id: int) -> None: ...

        def finished(self, *a: object, **k: object) -> None: ...

        def failed(self, *a: object, **k: object) -> None: ...

        def note(self, message: str) -> None: ...

    store = open_storage(url)
    study = optuna.load_study(study_name=STUDY, storage=store.optuna,
                              sampler=SeededRandomSampler(0))
    done = store.counts(STUDY).finished
    plan = StudyPlan(study, done + pack, SearchSpace().distributions("highway"), {}, 0)
    planner = PackPlanner(store, {STUDY: plan}, pack, holder=Quiet(), events=Quiet(),
                          launcher_id="scale", heartbeat_interval=10)
    seconds = []
    for _ in range(rounds):  # each round's pack is failed after, so the next asks afresh
        start = time.perf_counter()
        got = planner.next_pack()
        seconds.append(time.perf_counter() - start)
        assert got is not None and len(got.trials) == pack
        planner.release_pack(got, "benchmark: released")
    store.close()
    return statistics.median(seconds)


def time_queries(url: str) -> dict[str, float]:
    """The same three answers in this process, from a fresh storage: the queries alone,
    without the interpreter's start and the CLI's imports."""
    import io

    from hwsearch.app.formats import write_rows
    from hwsearch.app.queries import best_rows, status_rows, trial_rows
    from hwsearch.storage import open_storage

    out: dict[str, float] = {}
    for name, answer in (
        ("status", lambda store: status_rows(store)),
        ("best", lambda store: best_rows(store)),
        ("trials", lambda store: write_rows(trial_rows(store, STUDY), "csv", io.StringIO())),
    ):
        store = open_storage(url)
        start = time.perf_counter()
        answer(store)
        out[f"{name} query"] = time.perf_counter() - start
        store.close()
    return out


def time_command(args: Sequence[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ``hwsearch`` command. On a shared
    machine the wall time is mostly waiting for a core; the CPU time is what it costs."""
    hwsearch = shutil.which("hwsearch") or str(Path(sys.executable).with_name("hwsearch"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([hwsearch, *args], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"hwsearch {args[0]} failed: {done.stderr[-1000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


@contextmanager
def database(backend: str, directory: Path, n: int) -> Iterator[str]:
    """A fresh database for one size: a SQLite file, or one of this run's own on the
    PostgreSQL server at ``$HWSEARCH_TEST_PG`` (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'scale-{n}.db'}"
        return
    with own_database(ADMIN, f"hws_scale_{os.getpid()}_{n}") as url:
        yield url


def measure(url: str, n: int, args: argparse.Namespace, cwd: Path) -> dict[str, float]:
    row = {"write": build(url, n, args.epochs)}
    row["ask round"] = time_ask_round(url, args.pack)
    row.update(time_queries(url))
    commands = {
        "status": ["status", "--storage", url],
        "best": ["best", "--storage", url],
        "trials": ["trials", "--storage", url, "--study", STUDY, "--format", "csv"],
    }
    if not args.skip_report:
        commands["report"] = ["report", "--storage", url, "--out", str(cwd / f"report-{n}")]
    for name, command in commands.items():
        row[name], row[f"{name} cpu"] = time_command(command, cwd)
    return row


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"],
                   default=["sqlite"])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--pack", type=int, default=8)
    p.add_argument("--skip-report", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hwsearch-scale-") as tmp:
        cwd = Path(tmp)
        for backend in args.backends:
            rows[backend] = {}
            for n in args.sizes:
                with database(backend, cwd, n) as url:
                    row = measure(url, n, args, cwd)
                rows[backend][str(n)] = row
                print(f"{backend} N={n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items()),
                      flush=True)
    result = {"sizes": args.sizes, "epochs": args.epochs, "seconds": rows,
              "loadavg": os.getloadavg()[0]}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
