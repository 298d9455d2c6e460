"""The README of a published run: its protocol as the database records it, the claims as the
report words them, and a marked Discussion left for a person to write."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from hwsearch.storage.records import HOSTNAME, count_trials

if TYPE_CHECKING:
    from hwsearch.report.checks import ProtocolChecks

    from .publish import StudyRun

FILL = "**TO FILL IN:**"
PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "reproduction.md"
PROTOCOL_ANCHOR = "#the-protocol-what-the-papers-fix-what-they-leave-open"


@dataclass(frozen=True)
class RunFacts:
    runs: list[StudyRun]
    database: str  # as displayed: no password
    command: str | None
    load: str | None
    device: str | None
    out: Path


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _given(value: str | None, what: str) -> str:
    return value if value else f"{FILL} {what} (not in the database; pass it to the publisher)"


def wall_time(runs: Sequence[StudyRun]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first trial's start and the last finished trial's end."""
    starts = [t.datetime_start for r in runs for t in r.trials if t.datetime_start]
    ends = [t.datetime_complete for r in runs for t in r.trials if t.datetime_complete]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None or end is None:
        return "unknown (no finished trial)"
    seconds = int((end - start).total_seconds())
    h, rest = divmod(seconds, 3600)
    return (f"{h} h {rest // 60} min {rest % 60} s ({seconds} s), from the first trial's start "
            f"({start:%Y-%m-%d %H:%M:%S}) to the last trial's end ({end:%Y-%m-%d %H:%M:%S}), "
            "as the trials recorded them (local time of the launching machine); gaps between "
            "launches of the same studies count too")


def _range(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value['low']:g} to {value['high']:g}" + (", log scale" if value.get("log")
                                                           else ", uniform")
    if isinstance(value, list):
        return "one of " + ", ".join(str(v) for v in value)
    return str(value)


def _link(out: Path) -> str:
    if PROTOCOL_DOC.is_file():
        return f"[docs/reproduction.md]({os.path.relpath(PROTOCOL_DOC, out)}{PROTOCOL_ANCHOR})"
    return "docs/reproduction.md, \"The protocol: what the papers fix, what they leave open\""


def _protocol(facts: RunFacts) -> list[str]:
    runs = facts.runs
    rows = []
    for r in runs:
        c = count_trials(r.trials)
        s = r.spec
        rows.append([r.name, s["model"], s["depth"], s.get("width") or "the paper's",
                     len(r.trials), c.complete, c.diverged, c.pruned, c.failed,
                     s.get("epochs", "?"), s.get("batch_size", "?"),
                     s.get("limit_train") or "all", r.seed])
    codes = sorted({r.code_version or "not recorded (a study made before launches recorded "
                    "it)" for r in runs})
    hosts = sorted({str(t.user_attrs[HOSTNAME]) for r in runs for t in r.trials
                    if HOSTNAME in t.user_attrs})
    spaces: dict[str, list[str]] = {}
    for r in runs:
        # A study records the launch's whole space; its trials draw their family's part of it
        # (a plain net has no gate bias).
        drawn = {key for t in r.trials for key in t.params}
        for key, value in r.space.items():
            if key in drawn or not drawn:
                spaces.setdefault(f"{key}: {_range(value)}", []).append(str(r.spec["model"]))
    epochs = sorted({str(r.spec.get("epochs")) for r in runs})
    lines = [
        "## Protocol (read from the database)", "",
        f"- Database: `{facts.database}` (not published: the files here are read from it).",
        f"- Code: {', '.join(f'`{c}`' for c in codes)} (recorded by the launch on each study "
        "it created).",
        f"- Device: {_given(facts.device, 'the device and CPU/GPU model')}; trials trained on "
        f"host(s): {', '.join(hosts) or 'not recorded'}.",
        f"- Epochs per trial: {', '.join(epochs)}. Batch size, training examples and width "
        "per study below; each study records its whole configuration (`spec`).",
        f"- Wall time: {_duration(*wall_time(runs))}.",
        f"- Machine load during the run: {_given(facts.load, '`uptime` load averages')}.",
        "- Seeds: each study's sampling seed is in the table; trial n of a study trains with "
        "seed `(study_seed * 1000003 + n) % (2**31 - 1)` (weights and data order).",
        "", *_table(["Study", "Model", "Depth", "Width", "Trials", "Complete", "Diverged",
                     "Pruned", "Failed", "Epochs", "Batch", "Train examples", "Seed"], rows),
        "", "Diverged: trials whose loss turned NaN or exploded at some epoch; those with an "
        "earlier finite epoch keep its value and are complete, the others are Optuna's "
        "pruned. Failed: infrastructure failures, each replaced by a new trial.",
        "", f"Sampled hyperparameters (each trial draws each at random; why these ranges: "
        f"{_link(facts.out)}):", "",
        *(f"- {what} ({', '.join(sorted(set(models)))})" for what, models in spaces.items()),
    ]
    return lines


def _claims(tables: Sequence[ProtocolChecks]) -> list[str]:
    lines = ["## The papers' claims, as the report checks them", ""]
    for table in tables:
        lines += [f"Protocol: {table.protocol}. Studies: {', '.join(table.studies) or 'none'}.",
                  "", *_table(["Claim", "Verdict", "This run", "Rule", "Note"],
                              [[c.claim, f"**{c.verdict}**", c.measured, c.rule, c.note or "–"]
                               for c in table.checks]), ""]
    return lines


def readme(facts: RunFacts, tables: Sequence[ProtocolChecks], files: Sequence[str],
           sizes: dict[str, int]) -> str:
    """The README's text."""
    start, _ = wall_time(facts.runs)
    models = sorted({str(r.spec["model"]) for r in facts.runs})
    depths = sorted({int(r.spec["depth"]) for r in facts.runs})
    dataset = facts.runs[0].spec.get("dataset", "?")
    unfinished = sum(t.state in (TrialState.RUNNING, TrialState.WAITING)
                     for r in facts.runs for t in r.trials)
    lines = [
        f"# {dataset}: {' and '.join(models)} nets at depths "
        f"{', '.join(map(str, depths))}"
        + (f" (run of {start:%Y-%m-%d})" if start else ""), "",
        "Published by `scripts/publish` from the run's database: everything below is read from "
        "it, except what is marked **TO FILL IN** and the Discussion.", "",
        "## The command", "", "```", _given(facts.command, "the exact launch command"), "```",
        "",
    ]
    if unfinished:
        lines += [f"**{unfinished} trials were still running or waiting when this was "
                  "published.**", ""]
    lines += _protocol(facts) + [""] + _claims(tables) + [
        "## Files", "",
        *(f"- [{n}]({n}) ({sizes[n] / 1024:,.0f} KiB)" for n in files if n in sizes),
        "", "## Discussion", "",
        f"{FILL} where this run disagrees with the papers, say so claim by claim and discuss "
        "why (epochs, protocol, search size).", "",
    ]
    return "\n".join(lines)
