"""Many launchers, one study: the pack planner driven from many processes against a real database.

Each of ``--processes`` processes is a launcher without Ray: its own storage, heartbeat and
:class:`~hwsearch.search.planner.PackPlanner` on the same study (target ``--trials``). It
loops as the Tune searcher does (``next_pack``, ``pack_config``, per-epoch records, ``finish``;
``all_done`` when nothing is left to hand out), with training replaced by a fixed sleep, so it
loads the planner and the database only. Every claim of the study is timed: the wait for the
lock (what the other launchers cost this one) and how long it was held.

Then it checks the counts exactly, in the database: ``--trials`` COMPLETE trials, numbered
0 … trials-1 once each, and no other trial (none lost, none duplicated, no overshoot).

Without ``--url`` it makes a database ``hws_load_<pid>`` on ``--admin`` and drops it after.

    python benchmarks/load.py --processes 16 --trials 10000 --json benchmarks/results/load.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(_REPO))

STUDY = "load-highway-d10"
try:
    from pgdb import ADMIN, own_database  # noqa: E402
except ImportError:  # imported as a module of the benchmarks package
    from benchmarks.pgdb import ADMIN, own_database  # noqa: E402


class TimedClaims:
    """The storage, with each claim's wait and hold timed (everything else passes through)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.waits: list[float] = []
        self.holds: list[float] = []
        self.failed: list[float] = []  # waits that ended in the claim's timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextmanager
    def claim(self, study_name: str) -> Iterator[None]:
        start = time.perf_counter()
        with ExitStack() as stack:
            try:
                stack.enter_context(self._store.claim(study_name))
            except Exception:
                self.failed.append(time.perf_counter() - start)  # gave up waiting
                raise
            got = time.perf_counter()
            self.waits.append(got - start)
            try:
                yield
            finally:
                self.holds.append(time.perf_counter() - got)


class Quiet:
    """Progress events, counted instead of printed."""

    def __init__(self) -> None:
        self.finished_n = self.failed_n = 0
        self.notes: list[str] = []

    def finished(self, study: str, value: float | None, diverged: bool = False,
                 trial: int | None = None) -> None:
        self.finished_n += 1

    def failed(self, study: str, trial: int | None = None) -> None:
        self.failed_n += 1

    def note(self, message: str) -> None:
        self.notes.append(message)


def train(planner: Any, pack: Any, args: argparse.Namespace) -> None:
    """What a worker does with a pack, as the planner sees it: per-epoch records after a fixed
    sleep, then the final report with (dummy) weights."""
    from hwsearch.search.messages import EpochReport, FinalReport, TrialEpoch, TrialFinal

    planner.pack_config(pack)
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.sleep / args.epochs)
        record = {"epoch": epoch, "train_loss": 1.0 / epoch, "test_accuracy": 0.9}
        planner.record_epoch(pack, EpochReport(epoch, [
            TrialEpoch(t.number, record, None) for t in pack.trials]))
    if not args.epochs:
        time.sleep(args.sleep)
    final = FinalReport([TrialFinal(t.number, None, 1.0 / max(args.epochs, 1), True)
                         for t in pack.trials], params_per_net=0)
    planner.finish(pack, final, {t.number: b"weights" for t in pack.trials})


def launcher(index: int, url: str, args: argparse.Namespace, start: Any, out: Any) -> None:
    """One launcher's loop; puts its measurements on ``out``."""
    import optuna

    from hwsearch.search.heartbeat import Heartbeat
    from hwsearch.search.planner import PackPlanner, StudyPlan
    from hwsearch.search.sampler import SeededRandomSampler
    from hwsearch.search.space import SearchSpace
    from hwsearch.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(url)
    timed = TimedClaims(store)
    study = optuna.load_study(study_name=STUDY, storage=store.optuna,
                              sampler=SeededRandomSampler(0))
    plan = StudyPlan(study, args.trials, SearchSpace().distributions("highway"), {}, 0)
    events = Quiet()
    rounds: list[float] = []
    asked = packs = idle = 0
    error = ""
    with Heartbeat(store, args.heartbeat) as beat:
        planner = PackPlanner(timed, {STUDY: plan}, args.pack, holder=beat,  # type: ignore[arg-type]
                              events=events, launcher_id=f"load-{index}",
                              heartbeat_interval=args.heartbeat)
        start.wait()
        began = time.perf_counter()
        try:
            while not planner.gave_up:
                t0 = time.perf_counter()
                pack = planner.next_pack()
                rounds.append(time.perf_counter() - t0)
                if pack is None:
                    if planner.all_done():
                        break
                    idle += 1
                    time.sleep(args.idle)
                    continue
                packs += 1
                asked += len(pack.trials)
                train(planner, pack, args)
        except Exception as e:  # noqa: BLE001 - a launcher that dies is a result too
            error = f"{type(e).__name__}: {e}"
            planner.release(f"load test launcher {index} stopped: {error}")
        seconds = time.perf_counter() - began
    store.close()
    out.put({"index": index, "seconds": seconds, "asked": asked, "packs": packs, "idle": idle,
             "finished": events.finished_n, "failed": events.failed_n, "notes": events.notes,
             "waits": timed.waits, "holds": timed.holds, "rounds": rounds,
             "gave_up": planner.gave_up, "error": error, "claim_timeouts": timed.failed})


def make_study(url: str) -> None:
    from hwsearch.search.space import SearchSpace
    from hwsearch.search.studies import open_study
    from hwsearch.storage import open_storage
    from hwsearch.training import TrainConfig

    store = open_storage(url)
    open_study(store.optuna, STUDY, TrainConfig(model="highway", depth=10, epochs=1), 0,
               SearchSpace())
    store.close()


def check(url: str, target: int) -> dict[str, Any]:
    """The study's exact counts, read from the tables."""
    import sqlalchemy as sa

    from hwsearch.storage import open_storage
    from hwsearch.storage import schema as s

    store = open_storage(url)
    t = s.TRIALS
    with store.optuna.engine.connect() as conn:  # a benchmark reads the tables
        states = dict(conn.execute(
            sa.select(t.c.state, sa.func.count())
            .where(t.c.study_id == store.study_id(STUDY)).group_by(t.c.state)).all())
        total, distinct, low, high = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(t.c.number)),
                      sa.func.min(t.c.number), sa.func.max(t.c.number))
            .where(t.c.study_id == store.study_id(STUDY))).one()
    store.close()
    exact = (states == {"COMPLETE": target} and total == distinct == target
             and (low, high) == (0, target - 1))
    return {"states": states, "trials": total, "distinct_numbers": distinct,
            "numbers": [low, high], "exact": exact}


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": values[0] if values else 0.0, "p99": values[0] if values else 0.0}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "max": max(values), "n": len(values)}


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    make_study(url)
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(args.processes + 1), ctx.Queue()
    procs = [ctx.Process(target=launcher, args=(i, url, args, start, out))
             for i in range(args.processes)]
    for p in procs:
        p.start()
    start.wait(timeout=args.timeout)  # all imported and connected: the clock starts
    began = time.perf_counter()
    results = []
    deadline = time.monotonic() + args.timeout
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=5))
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and out.empty():
                break  # a launcher died without a word: count what the others said
    wall = time.perf_counter() - began
    for p in procs:
        p.join()
    waits = [w for r in results for w in r["waits"]]
    holds = [h for r in results for h in r["holds"]]
    asked = sum(r["asked"] for r in results)
    return {
        "processes": args.processes, "trials": args.trials, "pack": args.pack,
        "epochs": args.epochs, "sleep_s": args.sleep, "wall_s": wall,
        "asks": asked, "asks_per_s": asked / wall,
        "packs": sum(r["packs"] for r in results),
        "finished_events": sum(r["finished"] for r in results),
        "failed_events": sum(r["failed"] for r in results),
        "taken_over": sum(len(r["notes"]) for r in results),
        "gave_up": any(r["gave_up"] for r in results),
        "launchers_reported": len(results),
        "launcher_errors": {r["index"]: r["error"] for r in results if r["error"]},
        "claim_timeouts_s": [w for r in results for w in r["claim_timeouts"]],
        "lock_wait_s": _percentiles(waits), "lock_hold_s": _percentiles(holds),
        "next_pack_s": _percentiles([x for r in results for x in r["rounds"]]),
        "per_process_asks": sorted(r["asked"] for r in results),
        "counts": check(url, args.trials),
        "loadavg": os.getloadavg()[0],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=16)
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--pack", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1, help="per-epoch records per trial")
    p.add_argument("--sleep", type=float, default=0.05, help="seconds of 'training' per pack")
    p.add_argument("--idle", type=float, default=0.2, help="pause when nothing is left to ask")
    p.add_argument("--heartbeat", type=float, default=30.0)
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--url", help="an existing database (default: a fresh one on --admin)")
    p.add_argument("--admin", default=ADMIN)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.url:
        result = run(args.url, args)
    else:
        with own_database(args.admin, f"hws_load_{os.getpid()}") as url:
            result = run(url, args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if not result["counts"]["exact"]:
        raise SystemExit("counts are not exact: " + json.dumps(result["counts"]))
    return result


if __name__ == "__main__":
    main()
