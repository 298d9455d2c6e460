"""Publishing a finished run: one directory people can keep in the repository, read from the
run's database alone.

It holds ``README.md`` (the protocol as the studies recorded it, the claims as the report
words them, and a Discussion for a person to write), ``report.html`` (the self-contained
report), ``trials.csv`` (every trial with its per-epoch objective) and one
``figure-<id>.png`` per figure of the report, drawn by Chromium. Everything is written in a
staging folder beside the output and moved there only when every file is written and under
:data:`LIMIT_BYTES`, so a failure leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from optuna.trial import FrozenTrial

from hwsearch.output import OutputError, write_atomic
from hwsearch.storage import StorageError, open_storage
from hwsearch.storage.existing import check_existing
from hwsearch.storage.records import (
    HOSTNAME,
    SEED,
    STUDY_CODE,
    STUDY_SEED,
    STUDY_SPACE,
    diverged_epoch,
    outcome,
)
from hwsearch.storage.url import mask_url, parse_url

from .publish_readme import RunFacts, readme
from .quiet import quiet_optuna
from .screenshots import figure_screenshots

LIMIT_BYTES = 20 * 1024 * 1024  # what the repository takes in one file
REPORT, README, TRIALS = "report.html", "README.md", "trials.csv"
PARAMS = ("lr", "momentum", "lr_decay", "activation", "gate_bias")  # the sampled ones, in order


@dataclass(frozen=True)
class StudyRun:
    """One study as stored: its name, recorded configuration and every trial, whole."""

    name: str
    spec: dict[str, Any]
    seed: int | None
    space: dict[str, Any]
    code_version: str | None
    trials: list[FrozenTrial]


@dataclass(frozen=True)
class Published:
    out: Path
    sizes: dict[str, int]  # file name -> bytes, in the order written


def storage_url(db: str) -> str:
    """A database URL as given, or a SQLite file's path made one."""
    return db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"


def check_out(out: Path) -> None:
    """A new or empty directory only: a publication never mixes with or replaces another."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"`out` {out} is an existing file; allowed: a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        raise OutputError(f"`out` {out} exists and is not empty; allowed: a new or empty "
                          "directory")


def read_runs(db: str, dataset: str) -> tuple[list[StudyRun], str]:
    """The ``dataset`` studies that record a configuration, with all their trials, and the
    database as displayed; a :class:`StorageError` for anything that is not a hwsearch
    database."""
    from hwsearch.report.studies import spec_of

    url = storage_url(db)
    parsed = parse_url(url)
    shown = mask_url(parsed)
    check_existing(url, parsed, shown)
    quiet_optuna()
    store = open_storage(url, create=False)
    try:
        runs = []
        for summary in store.optuna.get_all_studies():
            attrs = summary.user_attrs
            spec = spec_of(summary.study_name, attrs)
            if spec is None or spec.get("dataset") != dataset or STUDY_SEED not in attrs:
                continue
            sid = store.study_id(summary.study_name)
            runs.append(StudyRun(summary.study_name, spec, attrs.get(STUDY_SEED),
                                 dict(attrs.get(STUDY_SPACE) or {}), attrs.get(STUDY_CODE),
                                 store.optuna.get_all_trials(sid, deepcopy=False)))
    finally:
        store.close()
    if not runs:
        raise StorageError(f"{shown} is not a hwsearch database of {dataset}: no study records "
                           "a configuration")
    runs.sort(key=lambda r: (str(r.spec["model"]), int(r.spec["depth"]), r.name))
    return runs, shown


def trials_csv(runs: list[StudyRun]) -> str:
    """Every trial, one row each: identity, hyperparameters, state and outcome, objective, and
    the objective after each epoch (``objective_epoch_1``…, empty past the trial's last)."""
    epochs = max((max(t.intermediate_values, default=0) for r in runs for t in r.trials),
                 default=0)
    head = ["study", "model", "depth", "number", "state", "outcome", "objective",
            *PARAMS, "seed", "diverged_epoch", "hostname", "datetime_start",
            "datetime_complete", "epochs_recorded",
            *(f"objective_epoch_{e}" for e in range(1, epochs + 1))]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for r in runs:
        for t in sorted(r.trials, key=lambda t: t.number):
            steps = t.intermediate_values
            writer.writerow([
                r.name, r.spec["model"], r.spec["depth"], t.number, t.state.name,
                outcome(t), _num(t.value), *(_num(t.params.get(p)) for p in PARAMS),
                t.user_attrs.get(SEED, ""), diverged_epoch(t) or "",
                t.user_attrs.get(HOSTNAME, ""), _when(t.datetime_start),
                _when(t.datetime_complete), len(steps),
                *(_num(steps.get(e)) for e in range(1, epochs + 1)),
            ])
    return buf.getvalue()


def _num(value: Any) -> str:
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, float | int) else str(value)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def publish(
    db: str, out: str | Path, *, data_dir: str | None = None, command: str | None = None,
    load: str | None = None, device: str | None = None, dataset: str = "mnist",
    progress: TextIO | None = None,
) -> Published:
    """Write the publication of the run in ``db`` (a SQLite file or a database URL) to the new
    or empty directory ``out``. ``command`` is the launch command as run, ``load`` the
    machine's load during it, ``device`` what it ran on: none is in the database, and each left
    out is a marked placeholder in the README. ``data_dir`` feeds the report's data-dependent
    figures."""
    target = Path(out)
    check_out(target)
    runs, shown = read_runs(db, dataset)

    def say(text: str) -> None:
        if progress is not None:
            print(f"publish: {text}", file=progress, flush=True)

    from hwsearch.report.write import write_report_with_claims  # torch: the input is good

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        say("writing the report")
        written = write_report_with_claims(
            storage_url(db), staging, dataset, data_dir=data_dir,
            on_stage=lambda k, n, what: say(f"report stage {k}/{n}: {what}"))
        page = written.path.rename(staging / REPORT)
        _check_sizes({REPORT: _size(page)})  # the big one: fail before the screenshots
        say("drawing each figure in Chromium")
        shots = figure_screenshots(page, staging, prefix="fig-")
        say("writing trials.csv and README.md")
        write_atomic(staging / TRIALS, trials_csv(runs))
        facts = RunFacts(runs=runs, database=shown, command=command, load=load, device=device,
                         out=target.resolve())
        files = [README, REPORT, TRIALS, *(p.name for p in shots)]
        write_atomic(staging / README, readme(facts, written.claims, files,
                                              {n: _size(staging / n) for n in files
                                               if n != README}))
        sizes = _check_sizes({name: _size(staging / name) for name in files})
        if target.is_dir():
            target.rmdir()  # empty: checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Published(target, sizes)


def _check_sizes(sizes: dict[str, int]) -> dict[str, int]:
    too_big = [f"{n} ({b / 2**20:.1f} MB)" for n, b in sizes.items() if b > LIMIT_BYTES]
    if too_big:
        raise OutputError(f"would write files over {LIMIT_BYTES / 2**20:g} MB: "
                          f"{', '.join(too_big)}; nothing written")
    return sizes


def _size(path: Path) -> int:
    return path.stat().st_size


def summary_json(result: Published) -> str:
    """What was written, for a script to read."""
    return json.dumps({"out": str(result.out), "bytes": result.sizes})
