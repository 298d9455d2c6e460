"""The summary table and the papers' claims, checked against this run's numbers.

Every check states its rule and shows its numbers, and says one of three things: it
"agrees", it "disagrees", or it is "not measured" (the studies it needs are missing). A claim
about a depth is checked at that depth or not at all: no other depth stands in. Studies are
compared only with studies run under the same protocol (:func:`protocol_of`); each protocol
gets its own table. A short or small search may disagree simply because it is short: the
numbers are there to read, not only the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from hwsearch.storage.records import LEGACY_PROTOCOL, count_trials
from hwsearch.training import HIGHWAY, PLAIN

from .data import training_curve
from .studies import StudyRecord, best_trial

if TYPE_CHECKING:
    from .nets import BiasChange

AGREES, DISAGREES, NOT_MEASURED = "agrees", "disagrees", "not measured"
# "On par": the two best training cross-entropies within this factor of each other, either way.
# Figure 1 of arXiv:1505.00387 shows gaps of one to several orders of magnitude, so 2 is strict.
ON_PAR = 2.0
# "Harder to optimize": the deepest plain net's best CE at least this many times the shallowest
# one's, with no decrease between consecutive depths.
HARDER = 2.0
# "About 1 order of magnitude": a ratio between 10^0.5 and 10^1.5.
ORDER_OF_MAGNITUDE = (10**0.5, 10**1.5)
# "Significantly faster": reaching a common loss level in at most 1/FASTER of the epochs.
FASTER = 2.0
# Runs of one epoch have no curve: the first epoch's loss is all they say. From two on, a
# highway run at L after epoch 1 and a plain run after epoch 2 resolve a factor of 2.
MIN_EPOCHS_FOR_SPEED = 2
PAPER_DEEP, PAPER_SHALLOW = 100, 10
# Spec keys that name a configuration within a protocol, or only where it ran.
_NOT_PROTOCOL = ("model", "depth", "dataset")


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
    test_accuracy: float | None  # the best trial's best epoch's test accuracy


def summary_data(records: Sequence[StudyRecord]) -> list[SummaryRow]:
    """One row per configuration (study): its best value, hyperparameters and trial counts."""
    rows = []
    for r in records:
        c = count_trials(r.trials)
        best = best_trial(r.trials)
        acc = None
        if best is not None:
            acc = r.test_accuracy(best)
        rows.append(SummaryRow(
            r.name, r.model, r.depth, r.spec.get("width"), r.spec.get("epochs"), r.limit_train,
            c.complete, c.diverged, c.failed, c.running,
            float(best.value) if best is not None else None,  # type: ignore[arg-type]
            best.number if best is not None else None,
            dict(best.params) if best is not None else {},
            float(acc) if acc is not None else None,
        ))
    return rows


# -- protocols --------------------------------------------------------------------------------


Protocol = tuple[tuple[str, Any], ...]


def protocol_of(record: StudyRecord) -> Protocol:
    """What must be equal for two studies' numbers to be compared: everything in the study's
    configuration but the model and depth (epochs, batch, training set, width, schedule, the
    objective and what lr_decay means). Studies of hwsearch 0.1 recorded no objective or decay
    unit; they get those of 0.1, so they are never pooled with newer ones."""
    spec = {**LEGACY_PROTOCOL, **record.spec}
    return tuple(sorted((k, v) for k, v in spec.items() if k not in _NOT_PROTOCOL))


def describe(protocol: Protocol) -> str:
    p = dict(protocol)
    train = f"first {p['limit_train']:,}" if p.get("limit_train") else "all"
    width = p.get("width") or "the paper's (50 highway, 71 plain)"
    parts = [f"{p.get('epochs')} epochs", f"batch {p.get('batch_size')}",
             f"training examples: {train}", f"width {width}",
             f"lr decay: {p.get('lr_decay')}" + (", once per epoch" if p.get("staircase") else ""),
             f"objective: {p.get('objective')}"]
    if p.get("carry_gate"):
        parts.append("independent carry gate")
    return "; ".join(parts)


class BestRun(NamedTuple):
    """The best trial of one configuration: its value and training curve."""

    study: str
    trial: int
    value: float
    epochs: list[int]
    losses: list[float]


def best_runs(records: Sequence[StudyRecord]) -> dict[tuple[str, int], BestRun]:
    """Per (model, depth) of the fully connected studies: the best complete trial over every
    study of that pair (they share one protocol: see :func:`by_protocol`)."""
    best: dict[tuple[str, int], BestRun] = {}
    for r in records:
        trial = best_trial(r.trials)
        if not r.in_figure1 or trial is None:
            continue
        value = float(trial.value)  # type: ignore[arg-type]
        if (r.model, r.depth) not in best or value < best[(r.model, r.depth)].value:
            epochs, losses = training_curve(r.fetch(trial))
            best[(r.model, r.depth)] = BestRun(r.name, trial.number, value, epochs, losses)
    return best


def by_protocol(records: Sequence[StudyRecord]) -> dict[Protocol, list[StudyRecord]]:
    groups: dict[Protocol, list[StudyRecord]] = {}
    for r in records:
        if r.in_figure1:
            groups.setdefault(protocol_of(r), []).append(r)
    return groups


# -- the claims -------------------------------------------------------------------------------


class Check(NamedTuple):
    claim: str
    paper: str  # where the paper says it
    rule: str  # how this report decides
    measured: str  # this run's numbers, in words
    value: float | None
    verdict: str  # AGREES | DISAGREES | NOT_MEASURED
    note: str


def _depths(best: Mapping[tuple[str, int], BestRun], model: str) -> list[int]:
    return sorted(d for m, d in best if m == model)


def _missing(best: Mapping[tuple[str, int], BestRun], *needed: tuple[str, int]) -> str:
    gone = [f"{m} at depth {d}" for m, d in needed if (m, d) not in best]
    return "no complete trial of " + " or ".join(gone) if gone else ""


def _plain_harder(best: Mapping[tuple[str, int], BestRun]) -> Check:
    claim = "Plain networks get harder to optimize as they get deeper"
    paper = "arXiv:1505.00387, Sec. 4.1 and Fig. 1"
    rule = (f"over all plain depths present (at least 2): the best CE never falls from one "
            f"depth to the next deeper, and the deepest's is ≥ {HARDER:g}× the shallowest's")
    depths = _depths(best, PLAIN)
    if len(depths) < 2:
        return Check(claim, paper, rule, f"plain nets at {len(depths)} depth(s)", None,
                     NOT_MEASURED, "needs complete plain trials at two depths or more")
    values = [best[(PLAIN, d)].value for d in depths]
    ratio = values[-1] / values[0]
    monotone = all(b >= a for a, b in zip(values, values[1:], strict=False))
    measured = ", ".join(f"d{d}: {v:.3g}" for d, v in zip(depths, values, strict=True))
    measured += f"; deepest ÷ shallowest = {ratio:.3g}"
    ok = monotone and ratio >= HARDER
    note = "" if monotone else "the best CE falls somewhere with depth"
    return Check(claim, paper, rule, measured, ratio, AGREES if ok else DISAGREES, note)


def _highway_not_harder(best: Mapping[tuple[str, int], BestRun]) -> Check:
    claim = "Highway networks do not get harder to optimize as they get deeper"
    paper = "arXiv:1505.00387, Sec. 4.1 and Fig. 1"
    rule = (f"over all highway depths present (at least 2): the deepest's best CE is at most "
            f"{ON_PAR:g}× the shallowest's")
    depths = _depths(best, HIGHWAY)
    if len(depths) < 2:
        return Check(claim, paper, rule, f"highway nets at {len(depths)} depth(s)", None,
                     NOT_MEASURED, "needs complete highway trials at two depths or more")
    deep, shallow = best[(HIGHWAY, depths[-1])].value, best[(HIGHWAY, depths[0])].value
    ratio = deep / shallow
    measured = (", ".join(f"d{d}: {best[(HIGHWAY, d)].value:.3g}" for d in depths)
                + f"; deepest ÷ shallowest = {ratio:.3g}")
    return Check(claim, paper, rule, measured, ratio,
                 AGREES if ratio <= ON_PAR else DISAGREES, "")


def _on_par(best: Mapping[tuple[str, int], BestRun]) -> Check:
    claim = (f"A {PAPER_DEEP}-layer highway net optimizes about as well as a "
             f"{PAPER_SHALLOW}-layer plain net (paraphrase)")
    paper = "arXiv:1505.00387, Fig. 1 (the curves of the two)"
    rule = (f"highway d{PAPER_DEEP} ÷ plain d{PAPER_SHALLOW} best CE between 1/{ON_PAR:g} and "
            f"{ON_PAR:g} (on par, either way)")
    missing = _missing(best, (HIGHWAY, PAPER_DEEP), (PLAIN, PAPER_SHALLOW))
    if missing:
        return Check(claim, paper, rule, "–", None, NOT_MEASURED, missing)
    h, p = best[(HIGHWAY, PAPER_DEEP)].value, best[(PLAIN, PAPER_SHALLOW)].value
    ratio = h / p
    verdict = AGREES if 1 / ON_PAR <= ratio <= ON_PAR else DISAGREES
    return Check(claim, paper, rule, f"{h:.3g} ÷ {p:.3g} = {ratio:.3g}", ratio, verdict, "")


def _order_of_magnitude(best: Mapping[tuple[str, int], BestRun]) -> Check:
    claim = (f'"the final result of the {PAPER_DEEP} layer highway network is about 1 order of '
             f'magnitude better than the {PAPER_SHALLOW} layer one"')
    paper = "arXiv:1505.00387, Sec. 4.1"
    low, high = ORDER_OF_MAGNITUDE
    rule = (f"highway d{PAPER_SHALLOW} ÷ highway d{PAPER_DEEP} best CE between 10^0.5 "
            f"({low:.3g}) and 10^1.5 ({high:.3g})")
    missing = _missing(best, (HIGHWAY, PAPER_SHALLOW), (HIGHWAY, PAPER_DEEP))
    if missing:
        return Check(claim, paper, rule, "–", None, NOT_MEASURED, missing)
    shallow, deep = best[(HIGHWAY, PAPER_SHALLOW)].value, best[(HIGHWAY, PAPER_DEEP)].value
    ratio = shallow / deep
    verdict = AGREES if low <= ratio <= high else DISAGREES
    return Check(claim, paper, rule, f"{shallow:.3g} ÷ {deep:.3g} = {ratio:.3g}", ratio, verdict,
                 "")


def epochs_text(epochs: int | None) -> str:
    """``1 epoch``, ``5 epochs``, ``unknown epochs``: how long the runs trained, in words."""
    if epochs is None:
        return "an unknown number of epochs"
    return f"{epochs} epoch" + ("" if epochs == 1 else "s")


def epochs_to_reach(run: BestRun, level: float) -> int | None:
    """The first epoch whose training CE is at or below ``level``; None if none is."""
    return next((e for e, loss in zip(run.epochs, run.losses, strict=True) if loss <= level),
                None)


def _faster(best: Mapping[tuple[str, int], BestRun], epochs: int | None) -> Check:
    claim = '"highway networks always converge significantly faster than the plain ones"'
    paper = "arXiv:1505.00387, Sec. 4.1"
    rule = (f"at every depth with both: let L be the higher of the two best CEs (a level both "
            f"best runs reach); the highway run reaches L in at most 1/{FASTER:g} of the epochs "
            f"the plain run needs, from the per-epoch objective (runs of ≥ "
            f"{MIN_EPOCHS_FOR_SPEED} epochs)")
    depths = sorted(set(_depths(best, HIGHWAY)) & set(_depths(best, PLAIN)))
    if not depths:
        return Check(claim, paper, rule, "–", None, NOT_MEASURED,
                     "needs complete plain and highway trials at one depth at least")
    if epochs is None or epochs < MIN_EPOCHS_FOR_SPEED:
        return Check(claim, paper, rule, f"{epochs_text(epochs)} per run", None, NOT_MEASURED,
                     f"runs of {epochs_text(epochs)} have no per-epoch curve to compare")
    parts, ratios = [], []
    for d in depths:
        h, p = best[(HIGHWAY, d)], best[(PLAIN, d)]
        level = max(h.value, p.value)
        eh, ep = epochs_to_reach(h, level), epochs_to_reach(p, level)
        if eh is None or ep is None:  # a curve without per-epoch records
            return Check(claim, paper, rule, "–", None, NOT_MEASURED,
                         f"depth {d}: a best run has no per-epoch curve")
        ratios.append(ep / eh)
        parts.append(f"d{d}: L = {level:.3g}, highway epoch {eh}, plain epoch {ep}")
    worst = min(ratios)
    verdict = AGREES if worst >= FASTER else DISAGREES
    return Check(claim, paper, rule, f"{epochs_text(epochs)} per run: " + "; ".join(parts)
                 + f"; smallest speed-up {worst:.3g}×", worst, verdict, "")


def _biases(bias: BiasChange | None, source: str) -> Check:
    claim = "Most transform-gate biases decrease during training (paraphrase)"
    paper = "arXiv:1505.00387, Sec. 4.1 and Fig. 2"
    rule = "more than half of the Figure 2 net's gate biases end below their initial value"
    if bias is None or bias.final.size == 0:
        return Check(claim, paper, rule, "–", None, NOT_MEASURED,
                     "no trained highway net with weights" + (f" ({source})" if source else ""))
    measured = (f"{bias.decreased} of {bias.final.size} biases below their initial "
                f"{bias.initial:.3g} ({bias.fraction_decreased:.0%}); mean change "
                f"{bias.mean_change:+.3g}")
    verdict = AGREES if bias.fraction_decreased > 0.5 else DISAGREES
    return Check(claim, paper, rule, measured, bias.fraction_decreased, verdict, source)


def paper_checks(
    best: Mapping[tuple[str, int], BestRun], epochs: int | None = None,
    bias: BiasChange | None = None, bias_source: str = "",
) -> list[Check]:
    """The papers' claims with one protocol's best runs (``best``: (model, depth) -> run)."""
    return [
        _plain_harder(best),
        _highway_not_harder(best),
        _on_par(best),
        _order_of_magnitude(best),
        _faster(best, epochs),
        _biases(bias, bias_source),
    ]


class ProtocolChecks(NamedTuple):
    protocol: str  # in words
    studies: list[str]
    checks: list[Check]
    epochs: int | None = None  # each run's, as the protocol records it


def claims(
    records: Sequence[StudyRecord], bias: BiasChange | None = None, bias_study: str = "",
    bias_source: str = "",
) -> list[ProtocolChecks]:
    """One table of checks per protocol among the fully connected studies; the gate-bias
    check goes with the protocol of the Figure 2 net's study (``bias_study``)."""
    out = []
    for protocol, group in by_protocol(records).items():
        names = [r.name for r in group]
        epochs = dict(protocol).get("epochs")
        group_bias = bias if bias_study in names else None
        epochs = epochs if isinstance(epochs, int) else None
        out.append(ProtocolChecks(
            describe(protocol), names,
            paper_checks(best_runs(group), epochs, group_bias,
                         bias_source if group_bias is not None else ""),
            epochs,
        ))
    if not out:
        out.append(ProtocolChecks("no fully connected study", [], paper_checks({}, None,
                                                                               bias,
                                                                               bias_source)))
    return out

