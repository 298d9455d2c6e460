"""The papers' claims on hand-built numbers, and the summary table."""

from __future__ import annotations

import numpy as np
from optuna.trial import TrialState
from report_fakes import record, trial

from hwsearch.report.checks import (
    AGREES,
    DISAGREES,
    NO_DATA,
    best_by_config,
    paper_checks,
    summary_data,
)
from hwsearch.report.data import BiasChange

PAPER_LIKE = {("plain", 10): 1e-3, ("plain", 100): 0.3, ("highway", 10): 2e-3,
              ("highway", 100): 8e-4}


def bias(decreased: int, total: int = 10) -> BiasChange:
    final = np.array([-2.5] * decreased + [-1.5] * (total - decreased))
    return BiasChange(-2.0, final, decreased, decreased / total, float((final + 2.0).mean()))


def verdicts(best: dict, b: BiasChange | None = None) -> list[str]:
    return [c.verdict for c in paper_checks(best, b)]


def test_numbers_like_the_papers_agree() -> None:
    checks = paper_checks(PAPER_LIKE, bias(8), "net X")
    assert [c.verdict for c in checks] == [AGREES] * 4
    highway, plain, versus, biases = checks
    assert highway.value == 0.4 and plain.value == 300.0 and versus.value == 0.8
    assert "depth 100 / depth 10" in highway.measured and highway.note == ""
    assert biases.value == 0.8 and "8 of 10" in biases.measured and biases.note == "net X"


def test_the_opposite_numbers_disagree() -> None:
    flipped = {("plain", 10): 1e-3, ("plain", 100): 1.2e-3, ("highway", 10): 1e-3,
               ("highway", 100): 0.5}
    assert verdicts(flipped, bias(3)) == [DISAGREES] * 4


def test_missing_depths_are_replaced_by_the_deepest_and_shallowest_and_said() -> None:
    best = {("highway", 20): 0.2, ("highway", 50): 0.1, ("plain", 20): 0.3, ("plain", 50): 0.45}
    highway, plain, versus, _ = paper_checks(best)
    assert highway.verdict == AGREES and "depth 50 / depth 20" in highway.measured
    assert "highway depth 50 for 100" in highway.note and "highway depth 20 for 10" in highway.note
    assert plain.verdict == DISAGREES and plain.value == 0.45 / 0.3  # 1.5 < 2: not "large"
    assert versus.value == 0.1 / 0.3 and "plain depth 20 for 10" in versus.note


def test_not_enough_data() -> None:
    assert verdicts({}) == [NO_DATA] * 4
    one_depth = {("highway", 10): 0.1, ("plain", 10): 0.2}
    assert verdicts(one_depth) == [NO_DATA, NO_DATA, AGREES, NO_DATA]
    assert verdicts({("plain", 10): 0.1, ("plain", 20): 0.5}) == [NO_DATA, AGREES, NO_DATA,
                                                                  NO_DATA]


def test_best_by_config_takes_the_lowest_complete_value_over_studies() -> None:
    records = [
        record("plain", 10, [trial(0, [0.5]), trial(1, [0.01], TrialState.PRUNED)]),
        record("plain", 10, [trial(0, [0.3])], name="b-mnist-plain-d10"),
        record("highway", 10, [trial(0, [], TrialState.FAIL)]),
        record("mnist-highway-10", 0, [trial(0, [0.1])]),
    ]
    assert best_by_config(records) == {("plain", 10): 0.3}


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
