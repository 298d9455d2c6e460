"""Table 1: conv studies beside the papers' numbers, with short runs labelled as such."""

from __future__ import annotations

import statistics

import pytest
import torch
from optuna.trial import FrozenTrial, TrialState

from hwsearch.models import PRESETS, parameter_count, preset
from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.fc import count_parameters
from hwsearch.report.page import Page
from hwsearch.report.sections import table1 as table1_section
from hwsearch.report.table1 import PAPERS, table1_data, unmatched_papers
from hwsearch.storage.records import TEST_ACCURACY, epoch_key
from hwtest.fake_trials import record, trial

CONV_PARAMS = {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.001, "gate_bias": -1.0}


def conv_trial(number: int, losses: list[float], accuracies: list[float],
               state: TrialState = TrialState.COMPLETE) -> FrozenTrial:
    t = trial(number, losses, state, params=dict(CONV_PARAMS))
    for epoch, acc in enumerate(accuracies, 1):
        t.user_attrs[epoch_key(epoch)]["test_accuracy"] = acc
    return t


def conv_record(trials: list[FrozenTrial], **spec: object) -> object:
    spec = {"width": 32, "epochs": 3, "batch_size": 100, "limit_train": None,
            "recipe": "caffe-mnist", **spec}
    return record("mnist-highway-10", 10, trials, name="mnist-mnist-highway-10-w32-d10", **spec)


@pytest.mark.parametrize(("name", "width"), [("mnist-highway-10", 0), ("mnist-highway-10", 32),
                                             ("cifar10-highway-19", 0)])
def test_parameter_count_is_the_nets(name: str, width: int) -> None:
    net = ConvHighwayNet(preset(name, width=width), torch.Generator().manual_seed(0))
    assert parameter_count(name, width) == count_parameters(net)


def test_a_short_study_beside_the_paper() -> None:
    trials = [  # loss decides the top runs; each at its best (lowest-loss) epoch
        conv_trial(0, [0.30, 0.10], [0.95, 0.981]),
        conv_trial(1, [0.20], [0.975]),
        conv_trial(2, [0.50, 0.05, 0.07], [0.90, 0.985, 0.99]),  # best epoch 2: 0.985
        conv_trial(3, [0.40], [0.96]),
        conv_trial(4, [0.45], [0.955]),
        conv_trial(5, [0.60], [0.999]),  # 6th by loss: outside the top 5
        conv_trial(6, [0.01], [0.999], TrialState.PRUNED),  # diverged: not a run
    ]
    fc = record("highway", 10, [trial(0, [0.5])])
    (row,) = table1_data([fc, conv_record(trials)])
    expected = [0.985, 0.981, 0.975, 0.96, 0.955]
    assert row.runs == 5 and row.best == pytest.approx(0.985)
    assert row.mean == pytest.approx(statistics.mean(expected))
    assert row.std == pytest.approx(statistics.stdev(expected))
    assert (row.width, row.params, row.iterations) == (32, 151_690, 1_800)
    assert row.paper is not None and row.paper.accuracy == 0.9955
    assert not row.comparable
    assert "1,800 iterations" in row.protocol and "SHORTER than the authors' 180,000" in \
        row.protocol
    # the width-16 net of the paper has no study here; Highway 1 has no preset at all
    assert [p.net for p in unmatched_papers("mnist", [row])] == [
        "Highway, 10 layers, 39K parameters"]
    assert [p.model for p in unmatched_papers("cifar10", [])] == ["cifar10-highway-19", None]


def test_a_trial_that_measured_its_test_set_once_is_read_from_its_attribute() -> None:
    """Today's launches record the stored model's test accuracy when a trial completes, and
    none per epoch; an older study's best-epoch record still counts (the test above)."""
    today = conv_trial(0, [0.30, 0.10], [])
    today.user_attrs[TEST_ACCURACY] = 0.987
    older = conv_trial(1, [0.20, 0.25], [0.975, 0.99])  # best epoch 1: 0.975
    (row,) = table1_data([conv_record([today, older])])
    assert row.runs == 2 and row.best == pytest.approx(0.987)
    assert row.mean == pytest.approx((0.987 + 0.975) / 2)


def test_only_a_full_length_run_on_all_the_data_is_comparable() -> None:
    trials = [conv_trial(0, [0.1], [0.99])]
    full = table1_data([conv_record(trials, epochs=300, width=0)])[0]
    assert full.iterations == 180_000 and full.comparable
    assert full.paper is not None and full.paper.accuracy == 0.9943 and full.width == 16
    part = table1_data([conv_record(trials, epochs=30_000, limit_train=600)])[0]
    assert part.iterations == 180_000 and not part.comparable
    assert "the first 600 training examples" in part.protocol
    single = table1_data([conv_record(trials)])[0]
    assert single.runs == 1 and single.std is None and single.best == single.mean == 0.99


def test_the_page_shows_table1_and_says_what_is_short() -> None:
    page = Page("t")
    table1_section(page, [conv_record([conv_trial(0, [0.1], [0.97])])], "mnist")
    text = page.render("")
    assert "Table 1" in text and "NO: shorter run" in text and "99.55%" in text
    assert "97.00%" in text and "151,690" in text
    assert "39K parameters, 99.43%" in text  # the paper's other net: no study, said so
    empty = Page("t")
    table1_section(empty, [record("highway", 10, [trial(0, [0.5])])], "mnist")
    assert "Table 1" not in empty.render("")
    assert {p.model for p in PAPERS} - {None} <= set(PRESETS)


def test_a_report_of_a_conv_study_hastable1_section(tmp_path) -> None:  # noqa: ANN001
    """The whole page, from a real SQLite storage holding one conv study and no FC study."""
    import optuna

    from hwsearch.report import write_report
    from hwsearch.storage.records import STUDY_SPEC

    url = f"sqlite:///{tmp_path / 'r.db'}"
    rec = conv_record([conv_trial(0, [0.3, 0.1], [0.95, 0.97]), conv_trial(1, [0.2], [0.96])])
    study = optuna.create_study(study_name=rec.name, storage=url)
    study.set_user_attr(STUDY_SPEC, rec.spec)
    for t in rec.trials:
        study.add_trial(t)
    text = write_report(url, tmp_path / "out").read_text()
    assert "Table 1: convolutional highway nets against the papers" in text
    assert "NO: shorter run" in text and "97.00%" in text and "99.55%" in text
