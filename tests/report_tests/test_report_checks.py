"""The papers' claims on hand-built studies: each claim can come out "agrees", "disagrees"
and "not measured"; no depth stands in for another; protocols are never pooled."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState

from hwsearch.report.checks import (
    AGREES,
    DISAGREES,
    NOT_MEASURED,
    BestRun,
    best_runs,
    by_protocol,
    claims,
    epochs_text,
    epochs_to_reach,
    paper_checks,
    summary_data,
)
from hwsearch.report.nets import BiasChange
from hwtest.fake_trials import record, trial

# Each claim by a phrase of its text that no other claim's holds.
CLAIMS = {
    "plain harder": "Plain networks get harder to optimize",
    "highway not harder": "Highway networks do not get harder",
    "on par": "optimizes about as well as",
    "order of magnitude": "order of magnitude better",
    "faster": "converge significantly faster",
    "biases": "transform-gate biases decrease",
}


def run(value: float, losses: list[float] | None = None) -> BestRun:
    """A best run whose value is its curve's minimum, as stored (``value`` names it)."""
    losses = losses if losses is not None else [value]
    assert min(losses) == pytest.approx(value)
    return BestRun("s", 0, min(losses), list(range(1, len(losses) + 1)), losses)


def curve(start: float, end: float, epochs: int = 8, reach_at: int | None = None) -> list[float]:
    """A decreasing curve from ``start`` that reaches ``end`` at epoch ``reach_at``."""
    reach_at = reach_at or epochs
    return [start + (end - start) * min(1.0, e / reach_at) for e in range(1, epochs + 1)]


def paper_like() -> dict:
    """Figure 1 as the paper has it: plain nets degrade with depth, highway nets improve (100
    layers about 10× better than 10), a 100-layer highway net on par with a 10-layer plain
    one, and highway runs get there in a fraction of the epochs."""
    return {
        ("plain", 10): run(1e-3, curve(2.0, 1e-3)),
        ("plain", 50): run(0.05, curve(2.0, 0.05)),
        ("plain", 100): run(0.3, curve(2.0, 0.3)),
        ("highway", 10): run(1e-2, curve(2.0, 1e-2, reach_at=3)),
        ("highway", 50): run(2e-3, curve(2.0, 2e-3, reach_at=3)),
        ("highway", 100): run(1.1e-3, curve(2.0, 1.1e-3, reach_at=3)),
    }


def bias(decreased: int, total: int = 10) -> BiasChange:
    final = np.array([-2.5] * decreased + [-1.5] * (total - decreased))
    return BiasChange(-2.0, final, decreased, decreased / total, float((final + 2.0).mean()))


def by_name(checks: list) -> dict:
    """The checks by claim name (each name's phrase in exactly one claim's text)."""
    out = {}
    for name, phrase in CLAIMS.items():
        (check,) = [c for c in checks if phrase in c.claim]
        out[name] = check
    assert len(checks) == len(CLAIMS)
    return out


def verdicts(best: dict, epochs: int | None = 8, b: BiasChange | None = None) -> dict:
    return {name: c.verdict for name, c in by_name(paper_checks(best, epochs, b)).items()}


def without(best: dict, *keys: tuple[str, int]) -> dict:
    return {k: v for k, v in best.items() if k not in keys}


# Per claim, data whose answer is known: (best runs, epochs, gate biases) for each verdict.
KNOWN = {
    ("plain harder", AGREES): (paper_like(), 8, None),  # 1e-3, 0.05, 0.3: up 300×
    ("plain harder", DISAGREES): ({**paper_like(), ("plain", 50): run(1.1e-3),  # no fall,
                                   ("plain", 100): run(1.2e-3)}, 8, None),  # but only 1.2×
    ("plain harder", NOT_MEASURED): (without(paper_like(), ("plain", 50), ("plain", 100)), 8,
                                     None),
    ("highway not harder", AGREES): (paper_like(), 8, None),
    ("highway not harder", DISAGREES): ({**paper_like(), ("highway", 100): run(0.05)}, 8, None),
    ("highway not harder", NOT_MEASURED): (
        without(paper_like(), ("highway", 50), ("highway", 100)), 8, None),
    ("on par", AGREES): (paper_like(), 8, None),  # 1.1e-3 against 1e-3
    ("on par", DISAGREES): ({**paper_like(), ("plain", 10): run(1e-4)}, 8, None),  # 11×
    ("on par", NOT_MEASURED): (without(paper_like(), ("plain", 10)), 8, None),
    ("order of magnitude", AGREES): (paper_like(), 8, None),  # 1e-2 / 1.1e-3 = 9.1
    ("order of magnitude", DISAGREES): ({**paper_like(), ("highway", 10): run(2e-3)}, 8, None),
    ("order of magnitude", NOT_MEASURED): (without(paper_like(), ("highway", 10)), 8, None),
    ("faster", AGREES): (paper_like(), 8, None),  # highway there at epoch 3, plain at 8
    ("faster", DISAGREES): ({**paper_like(),
                             ("highway", 10): run(1e-2, curve(2.0, 1e-2, reach_at=5))}, 8, None),
    ("faster", NOT_MEASURED): (paper_like(), 1, None),  # one epoch: no curve
    ("biases", AGREES): (paper_like(), 8, bias(6)),
    ("biases", DISAGREES): (paper_like(), 8, bias(5)),  # half is not most
    ("biases", NOT_MEASURED): (paper_like(), 8, None),
}


@pytest.mark.parametrize(("claim", "verdict"), sorted(KNOWN), ids="-".join)
def test_each_claims_verdict_on_data_with_a_known_answer(claim: str, verdict: str) -> None:
    best, epochs, b = KNOWN[claim, verdict]
    check = by_name(paper_checks(best, epochs, b, "the net"))[claim]
    assert check.verdict == verdict, check
    assert check.rule and check.paper  # every verdict shows its rule and source
    if verdict == NOT_MEASURED:
        assert check.value is None and check.note  # says what is missing
    else:
        assert check.value is not None and check.measured not in ("", "–")


def test_numbers_like_the_papers_agree() -> None:
    checks = paper_checks(paper_like(), 8, bias(8), "net X")
    assert [c.verdict for c in checks] == [AGREES] * 6
    plain, highway, on_par, order, faster, biases = checks
    assert plain.value == pytest.approx(300) and highway.value == pytest.approx(0.11)
    assert on_par.value == pytest.approx(1.1) and order.value == pytest.approx(1e-2 / 1.1e-3)
    assert faster.value >= 2 and "d10" in faster.measured
    assert biases.value == 0.8 and "8 of 10" in biases.measured and biases.note == "net X"
    for c in checks:
        assert c.rule and c.paper  # every verdict shows its rule and source


@pytest.mark.parametrize("claim, change", [
    ("plain harder", {("plain", 100): run(1.2e-3, curve(2.0, 1.2e-3))}),  # only 1.2×
    ("plain harder", {("plain", 50): run(1e-4, curve(2.0, 1e-4))}),  # falls at 50: no trend
    ("highway not harder", {("highway", 100): run(0.05, curve(2.0, 0.05, reach_at=3))}),
    ("on par", {("highway", 100): run(1e-4, curve(2.0, 1e-4, reach_at=3))}),  # 10× better
    ("on par", {("highway", 100): run(5e-3, curve(2.0, 5e-3, reach_at=3))}),  # 5× worse
    ("order of magnitude", {("highway", 100): run(9e-3, curve(2.0, 9e-3, reach_at=3))}),
    ("order of magnitude", {("highway", 100): run(1e-4, curve(2.0, 1e-4, reach_at=3))}),
    ("faster", {("highway", 50): run(2e-3, curve(2.0, 2e-3, reach_at=6))}),  # 8/6 < 2
])
def test_each_claim_can_disagree(claim: str, change: dict) -> None:
    best = {**paper_like(), **change}
    assert verdicts(best)[claim] == DISAGREES
    assert verdicts(paper_like(), b=bias(3))["biases"] == DISAGREES


def test_a_missing_depth_is_never_substituted() -> None:
    """With the 100-layer studies missing, the claims that name 100 layers are not measured,
    even though deeper-than-10 studies exist; the trend claims use the depths present."""
    best = {k: v for k, v in paper_like().items() if k[1] != 100}
    v = verdicts(best)
    assert v["on par"] == v["order of magnitude"] == NOT_MEASURED
    assert v["plain harder"] == AGREES and v["highway not harder"] == AGREES
    checks = paper_checks(best, 8)
    assert "highway at depth 100" in checks[2].note and "depth 50" not in checks[2].measured
    only_10 = {k: v for k, v in paper_like().items() if k[1] == 10}
    assert set(verdicts(only_10).values()) - {NOT_MEASURED} == {AGREES}  # only "faster"
    assert verdicts(only_10)["plain harder"] == NOT_MEASURED


def test_nothing_measured_without_data_or_epochs() -> None:
    assert set(verdicts({}, epochs=8).values()) == {NOT_MEASURED}
    assert verdicts(paper_like(), epochs=1)["faster"] == NOT_MEASURED  # one epoch: no curve
    assert verdicts(paper_like(), epochs=None)["faster"] == NOT_MEASURED


def test_epochs_to_reach_a_level() -> None:
    r = run(0.1, [1.0, 0.5, 0.1, 0.2])
    assert (epochs_to_reach(r, 0.5), epochs_to_reach(r, 0.1), epochs_to_reach(r, 0.01)) == (
        2, 3, None)


def test_protocols_are_never_pooled() -> None:
    """Studies of the same configuration under other protocols (epochs, training set, or an
    older objective) get a table of their own."""
    records = [
        record("plain", 10, [trial(0, [0.5, 0.1])]),
        record("highway", 10, [trial(0, [0.4, 0.2])]),
        record("plain", 100, [trial(0, [0.01])], epochs=50),  # another protocol
        record("highway", 100, [trial(0, [0.05])], limit_train=None),  # and another
        record("plain", 20, [trial(0, [0.3])], objective="something else"),
    ]
    groups = by_protocol(records)
    assert sorted(len(g) for g in groups.values()) == [1, 1, 1, 2]
    tables = claims(records)
    assert len(tables) == 4
    main = next(t for t in tables if len(t.studies) == 2)
    assert "3 epochs" in main.protocol and "first 1,000" in main.protocol
    assert all(c.verdict == NOT_MEASURED for c in main.checks[:4])  # one depth per model here


def test_best_runs_take_the_lowest_complete_value_over_studies() -> None:
    records = [
        record("plain", 10, [trial(0, [0.5]), trial(1, [0.01], TrialState.PRUNED)]),
        record("plain", 10, [trial(0, [0.3])], name="b-mnist-plain-d10"),
        record("highway", 10, [trial(0, [], TrialState.FAIL)]),
        record("mnist-highway-10", 0, [trial(0, [0.1])]),
    ]
    best = best_runs(records)
    assert list(best) == [("plain", 10)] and best[("plain", 10)].value == 0.3
    assert best[("plain", 10)].study == "b-mnist-plain-d10"


def test_summary_has_one_row_per_study_with_its_best_trial() -> None:
    records = [
        record("highway", 10, [trial(0, [0.9, 0.4]), trial(1, [0.2, 0.3]),
                               trial(2, [5.0], TrialState.PRUNED), trial(3, [], TrialState.FAIL)]),
        record("plain", 10, [trial(0, [1.0], TrialState.PRUNED)]),
    ]
    highway, plain = summary_data(records)
    assert (highway.study, highway.best_value, highway.best_trial) == ("mnist-highway-d10", 0.2, 1)
    assert (highway.complete, highway.diverged, highway.failed) == (2, 1, 1)
    assert highway.params == records[0].trials[1].params and highway.test_accuracy == 0.9
    assert (highway.limit_train, highway.epochs) == (1000, 3)
    assert (plain.best_value, plain.best_trial, plain.params, plain.diverged) == (None, None, {}, 1)


def two_epochs(highway_reach: int) -> dict:
    """Two-epoch runs at one depth: plain reaches its best in epoch 2, highway in
    ``highway_reach``, its best the higher of the two (so L is highway's)."""
    high = [0.5, 0.2] if highway_reach == 2 else [0.2, 0.2]
    return {("plain", 10): run(0.1, [0.9, 0.1]), ("highway", 10): run(0.2, high)}


@pytest.mark.parametrize(("highway_reach", "verdict"), [(1, AGREES), (2, DISAGREES)])
def test_speed_is_measured_from_two_epochs_in_both_directions(highway_reach: int,
                                                             verdict: str) -> None:
    """Two epochs are enough: highway at L after epoch 1 and plain after epoch 2 is the 2×
    the rule asks for; both after epoch 2 is no speed-up. The check says the epochs."""
    faster = by_name(paper_checks(two_epochs(highway_reach), 2))["faster"]
    assert faster.verdict == verdict, faster
    assert faster.measured.startswith("2 epochs per run: d10: L = 0.2")
    assert faster.value == pytest.approx(2.0 if highway_reach == 1 else 1.0)


def test_one_epoch_runs_say_so_and_leave_speed_unmeasured() -> None:
    faster = by_name(paper_checks(two_epochs(1), 1))["faster"]
    assert faster.verdict == NOT_MEASURED and faster.value is None
    assert faster.measured == "1 epoch per run" and "1 epoch" in faster.note
    assert epochs_text(1) == "1 epoch" and epochs_text(5) == "5 epochs"


def test_the_claims_table_gives_the_runs_epochs() -> None:
    records = [record("plain", 10, [trial(0, [2.0, 1.0, 0.5])], epochs=3),
               record("highway", 10, [trial(0, [1.0, 0.5, 0.4])], epochs=3)]
    (table,) = claims(records)
    assert table.epochs == 3 and "3 epochs" in table.protocol
    assert by_name(table.checks)["faster"].measured.startswith("3 epochs per run")
