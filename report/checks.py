"""The summary table and the papers' claims, checked against this run's numbers.

A check is only as good as its data: with a short or small search, a "disagrees" may just mean
the search was too short, so each check shows its numbers and which depths it used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from hwsearch.search.studies import counts

from .data import FC_MODELS, BiasChange
from .studies import StudyRecord, best_trial

AGREES, DISAGREES, NO_DATA = "agrees", "disagrees", "not enough data"
# Factor by which two training cross-entropies may differ and still count as "about the same".
# Figure 1 of arXiv:1505.00387 shows gaps of one to several orders of magnitude, so 2 is strict.
TOLERANCE = 2.0
PAPER_DEEP, PAPER_SHALLOW = 100, 10


class SummaryRow(NamedTuple):
    study: str
    model: str
    depth: int
    width: int | None
    epochs: int | None
    limit_train: int | None
    complete: int
    diverged: int
    failed: int
    running: int
    best_value: float | None
    best_trial: int | None
    params: dict[str, Any]
    test_accuracy: float | None  # the best trial's last-epoch test accuracy


def summary_data(records: Sequence[StudyRecord]) -> list[SummaryRow]:
    """One row per configuration (study): its best value, hyperparameters and trial counts."""
    rows = []
    for r in records:
        c = counts(r.trials)
        best = best_trial(r.trials)
        history = best.user_attrs.get("history", []) if best is not None else []
        acc = history[-1].get("test_accuracy") if history else None
        rows.append(SummaryRow(
            r.name, r.model, r.depth, r.spec.get("width"), r.spec.get("epochs"), r.limit_train,
            c.complete, c.diverged, c.failed, c.running,
            float(best.value) if best is not None else None,  # type: ignore[arg-type]
            best.number if best is not None else None,
            dict(best.params) if best is not None else {},
            float(acc) if acc is not None else None,
        ))
    return rows


def best_by_config(records: Sequence[StudyRecord]) -> dict[tuple[str, int], float]:
    """Lowest training CE per (model, depth), over every study of that pair."""
    best: dict[tuple[str, int], float] = {}
    for r in records:
        trial = best_trial(r.trials)
        if r.model in FC_MODELS and trial is not None:
            value = float(trial.value)  # type: ignore[arg-type]
            best[(r.model, r.depth)] = min(value, best.get((r.model, r.depth), math.inf))
    return best


class Check(NamedTuple):
    claim: str
    paper: str
    measured: str  # this run's numbers, in words
    value: float | None
    verdict: str  # AGREES | DISAGREES | NO_DATA
    note: str  # e.g. which depths stood in for 100 and 10


def _depths(best: Mapping[tuple[str, int], float], model: str) -> list[int]:
    return sorted(d for m, d in best if m == model)


def _pick(depths: list[int], wanted: int, deepest: bool) -> int | None:
    if wanted in depths:
        return wanted
    if not depths:
        return None
    return depths[-1] if deepest else depths[0]


def _substitution(used: list[tuple[str, int | None, int]]) -> str:
    swaps = [f"{model} depth {have} for {want}" for model, have, want in used if have != want]
    return ("used " + "; ".join(swaps) + " (not in the storage)") if swaps else ""


def _depth_ratio(best: Mapping[tuple[str, int], float], model: str, claim: str, paper: str,
                 small_agrees: bool) -> Check:
    depths = _depths(best, model)
    if len(depths) < 2:
        return Check(claim, paper, f"{model} nets at {len(depths)} depth(s)", None, NO_DATA,
                     "needs complete trials at two depths")
    deep, shallow = _pick(depths, PAPER_DEEP, True), _pick(depths, PAPER_SHALLOW, False)
    assert deep is not None and shallow is not None
    if deep <= shallow:  # e.g. 10 stood in for 100 because only 10 and 5 exist
        deep, shallow = depths[-1], depths[0]
    ratio = best[(model, deep)] / best[(model, shallow)]
    ok = ratio <= TOLERANCE if small_agrees else ratio >= TOLERANCE
    measured = (f"CE at depth {deep} / depth {shallow} = {best[(model, deep)]:.3g} / "
                f"{best[(model, shallow)]:.3g} = {ratio:.3g}")
    note = _substitution([(model, deep, PAPER_DEEP), (model, shallow, PAPER_SHALLOW)])
    return Check(claim, paper, measured, ratio, AGREES if ok else DISAGREES, note)


def _highway_vs_plain(best: Mapping[tuple[str, int], float]) -> Check:
    claim = (f"A {PAPER_DEEP}-layer highway net optimizes as well as a {PAPER_SHALLOW}-layer "
             "plain net")
    paper = f"highway d{PAPER_DEEP} ÷ plain d{PAPER_SHALLOW} on par (≤ {TOLERANCE:g}; Fig. 1)"
    deep = _pick(_depths(best, "highway"), PAPER_DEEP, True)
    shallow = _pick(_depths(best, "plain"), PAPER_SHALLOW, False)
    if deep is None or shallow is None:
        return Check(claim, paper, "needs both a highway and a plain result", None, NO_DATA, "")
    ratio = best[("highway", deep)] / best[("plain", shallow)]
    measured = (f"highway d{deep} / plain d{shallow} = {best[('highway', deep)]:.3g} / "
                f"{best[('plain', shallow)]:.3g} = {ratio:.3g}")
    note = _substitution([("highway", deep, PAPER_DEEP), ("plain", shallow, PAPER_SHALLOW)])
    if deep < shallow:
        note = (note + "; " if note else "") + "the highway net is shallower than the plain one"
    return Check(claim, paper, measured, ratio, AGREES if ratio <= TOLERANCE else DISAGREES, note)


def _biases(bias: BiasChange | None, source: str) -> Check:
    claim = "Most transform-gate biases decrease during training"
    paper = "most biases decreased further (Sec. 4.1, Fig. 2)"
    if bias is None or bias.final.size == 0:
        return Check(claim, paper, "no trained highway net with weights", None, NO_DATA, source)
    measured = (f"{bias.decreased} of {bias.final.size} biases below their initial "
                f"{bias.initial:.3g} ({bias.fraction_decreased:.0%}); mean change "
                f"{bias.mean_change:+.3g}")
    verdict = AGREES if bias.fraction_decreased > 0.5 else DISAGREES
    return Check(claim, paper, measured, bias.fraction_decreased, verdict, source)


def paper_checks(
    best: Mapping[tuple[str, int], float], bias: BiasChange | None = None, bias_source: str = ""
) -> list[Check]:
    """The papers' claims with this run's numbers; ``best`` maps (model, depth) to best CE."""
    return [
        _depth_ratio(
            best, "highway", "Highway nets do not get harder to optimize with depth",
            f"highway CE d{PAPER_DEEP} ÷ d{PAPER_SHALLOW} small (≤ {TOLERANCE:g}; Fig. 1)", True,
        ),
        _depth_ratio(
            best, "plain", "Plain nets get harder to optimize with depth",
            f"plain CE d{PAPER_DEEP} ÷ d{PAPER_SHALLOW} large (≥ {TOLERANCE:g}; Fig. 1)", False,
        ),
        _highway_vs_plain(best),
        _biases(bias, bias_source),
    ]
