"""The pure data functions, on hand-built trials and on untrained nets with known gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from optuna.trial import TrialState

from hwsearch.models import FCConfig
from hwsearch.models.fc import FCNet
from hwsearch.report import figures
from hwsearch.report.data import (
    ecdf_data,
    figure1_data,
    importance_data,
    slice_data,
    training_curve,
)
from hwsearch.report.nets import (
    _lesioned_cross_entropies,
    bias_change_data,
    cross_entropy,
    inner_workings_data,
    lesion_data,
    training_examples,
)
from hwsearch.report.studies import spec_of
from hwsearch.report.write import pick_highway_study
from hwtest import stored_trials
from hwtest.fake_trials import record, trial


def net(gate_bias: float, depth: int = 6, activation: str = "tanh", seed: int = 0) -> FCNet:
    return FCNet(FCConfig(kind="highway", depth=depth, width=16, activation=activation,
                          gate_bias=gate_bias), torch.Generator().manual_seed(seed)).eval()


def inputs(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


# --- Figure 1 ---------------------------------------------------------------------------------


def test_figure1_picks_each_depths_best_complete_trial_across_studies() -> None:
    records = [
        record("plain", 10, [trial(0, [2.0, 1.5]), trial(1, [2.0, 0.9, 1.2])]),
        # A second study of the same configuration (another prefix) holds the overall best.
        record("plain", 10, [trial(0, [1.0, 0.4])], name="b-mnist-plain-d10"),
        # A diverged trial is pruned: its low early loss must not make it "best".
        record("highway", 10, [trial(0, [0.01], TrialState.PRUNED), trial(1, [0.8, 0.3])]),
        record("highway", 20, [trial(0, [3.0, 2.0]), trial(1, [1.0, 0.2, 0.25])]),
        record("plain", 20, [trial(0, [5.0], TrialState.PRUNED)]),
    ]
    data = figure1_data(records)
    assert [p.depth for p in data.panels] == [10, 20]
    d10, d20 = data.panels
    assert (d10.plain.study, d10.plain.trial, d10.plain.best) == ("b-mnist-plain-d10", 0, 0.4)
    assert d10.plain.losses == [1.0, 0.4] and d10.plain.epochs == [1, 2]
    assert (d10.highway.trial, d10.highway.best) == (1, 0.3)
    assert (d20.highway.trial, d20.highway.losses) == (1, [1.0, 0.2, 0.25])
    assert d20.plain is None  # the depth exists but has no complete plain trial


def test_figure1_ignores_other_datasets_models_and_is_empty_without_trials() -> None:
    assert figure1_data([]).panels == []
    conv = record("mnist-highway-10", 0, [trial(0, [1.0])])
    assert figure1_data([conv]).panels == []


def test_training_curve_falls_back_to_intermediate_values() -> None:
    t = trial(0, [3.0, 2.0, 1.0], with_history=False)
    assert training_curve(t) == ([1, 2, 3], [3.0, 2.0, 1.0])


# --- Figure 2 and lesioning -------------------------------------------------------------------


def test_lesioning_a_net_with_shut_gates_changes_nothing() -> None:
    """Gate bias −1000 ⇒ T ≈ 0 everywhere: every layer already only carries its input."""
    model = net(gate_bias=-1e3)
    x, y = inputs()
    data = lesion_data(model, x, y)
    assert data.layers == [2, 3, 4, 5, 6]
    assert data.n_samples == 64
    assert data.losses == pytest.approx([data.unlesioned] * 5, rel=1e-9, abs=1e-12)


def test_lesioning_a_net_with_open_gates_changes_the_loss() -> None:
    """T ≈ 1: each layer transforms; pinning T = 0 skips it, which must change the output."""
    model = net(gate_bias=1e3)
    x, y = inputs()
    data = lesion_data(model, x, y)
    assert all(abs(v - data.unlesioned) > 1e-6 for v in data.losses)
    assert data.unlesioned == pytest.approx(cross_entropy(model, x, y))


def test_each_layer_is_lesioned_in_turn() -> None:
    """Only layer 4's gates are open (the others shut by their bias): lesioning it changes the
    loss, lesioning any other changes nothing, and each point is its own layer's."""
    model = net(gate_bias=-1e3)
    with torch.no_grad():
        model.layers[2].t.bias.fill_(1e3)  # the net's layer 4
    x, y = inputs()
    data = lesion_data(model, x, y)
    assert data.layers == [2, 3, 4, 5, 6]
    for layer, loss in zip(data.layers, data.losses, strict=True):
        assert loss == pytest.approx(cross_entropy(model, x, y, lesion={layer - 2}), rel=1e-12)
        if layer == 4:
            assert abs(loss - data.unlesioned) > 1e-3
        else:
            assert loss == pytest.approx(data.unlesioned, rel=1e-9, abs=1e-12)


def test_lesioning_from_the_layers_inputs_gives_the_lesioned_forwards() -> None:
    """Every gate open a little: each lesion's loss is the lesioned forward's, to the last
    bits (lesion_data starts each lesion from the unlesioned input to its layer)."""
    model = net(gate_bias=0.0)
    x, y = inputs()
    data = lesion_data(model, x, y)
    for layer, loss in zip(data.layers, data.losses, strict=True):
        assert loss == pytest.approx(cross_entropy(model, x, y, lesion={layer - 2}), rel=1e-12)
        assert loss != pytest.approx(data.unlesioned, rel=1e-9)


def test_lesioning_on_threads_gives_the_same_bits() -> None:
    """The batches run on threads: any number of them gives the one-thread numbers exactly
    (each batch's sums are added in batch order)."""
    model = net(gate_bias=0.0)
    x, y = inputs(40)
    one = _lesioned_cross_entropies(model, x, y, batch_size=7, workers=1)
    for workers in (2, 3, 6):
        assert _lesioned_cross_entropies(model, x, y, batch_size=7, workers=workers) == one
    losses, whole = one
    assert whole == pytest.approx(cross_entropy(model, x, y, batch_size=7), rel=1e-12)
    assert losses[1] == pytest.approx(cross_entropy(model, x, y, {1}, batch_size=7), rel=1e-12)


def test_lesion_data_refuses_plain_nets() -> None:
    plain = FCNet(FCConfig(kind="plain", depth=3, width=8))
    with pytest.raises(ValueError, match="highway"):
        lesion_data(plain, *inputs(4))


def test_inner_workings_of_an_untrained_net() -> None:
    model = net(gate_bias=-3.0, depth=5)
    x, _ = inputs(50)
    data = inner_workings_data(model, x, x[7:8], sample_index=7, seed=3, batch_size=16)
    assert data.layers == [2, 3, 4, 5]
    for panel in (data.biases, data.mean_gates, data.sample_gates, data.sample_outputs,
                  data.sample_states):
        assert panel.shape == (4, 16)
    np.testing.assert_array_equal(data.biases, -3.0)
    gates, states, outputs = model.internals(x)
    np.testing.assert_allclose(data.mean_gates, gates.double().mean(1).numpy(), atol=1e-6)
    np.testing.assert_allclose(data.sample_gates, gates[:, 7].double().numpy(), atol=1e-5)
    np.testing.assert_allclose(data.sample_outputs, outputs[:, 7].double().numpy(), atol=1e-5)
    np.testing.assert_allclose(data.sample_states, states[:, 7].double().numpy(), atol=1e-5)
    assert (data.n_samples, data.sample_index, data.seed, data.initial_bias) == (50, 7, 3, -3.0)


def test_shut_gates_give_stripes_in_the_block_outputs() -> None:
    """The paper's Figure 2: where the gates stay shut, a layer copies its input, so each unit's
    block output is constant down the layers (stripes). The block states H(x) are not."""
    model = net(gate_bias=-60.0, depth=8)  # T = σ(−60) ≈ 1e-26: shut
    x, _ = inputs(20)
    data = inner_workings_data(model, x, x[3:4], sample_index=3)
    outputs, states = data.sample_outputs, data.sample_states
    np.testing.assert_allclose(outputs, np.broadcast_to(outputs[0], outputs.shape), atol=1e-12)
    assert np.ptp(outputs[0]) > 0.01  # the stripes differ from each other
    assert np.ptp(states, axis=0).max() > 0.1  # H changes down the layers: not stripes
    # and the opposite: open gates (bias +60) pass the block state on, so y = H
    open_ = inner_workings_data(net(gate_bias=60.0, depth=8), x, x[3:4], sample_index=3)
    np.testing.assert_allclose(open_.sample_outputs, open_.sample_states, atol=1e-6)  # float32
    assert np.ptp(open_.sample_outputs, axis=0).max() > 0.01


def test_inner_workings_without_data_still_has_the_biases() -> None:
    data = inner_workings_data(net(gate_bias=-2.0), None)
    assert data.biases.shape == (5, 16)
    assert data.mean_gates is None and data.sample_gates is None and data.n_samples == 0


def test_bias_change_counts_biases_below_their_initial_value() -> None:
    model = net(gate_bias=-2.0, depth=3)  # 2 highway layers × 16 = 32 biases
    with torch.no_grad():
        model.layers[0].t.bias[:12] -= 0.5
        model.layers[1].t.bias[:4] += 1.0
    change = bias_change_data(model)
    assert (change.initial, change.decreased, change.final.size) == (-2.0, 12, 32)
    assert change.fraction_decreased == pytest.approx(12 / 32)
    assert change.mean_change == pytest.approx((-0.5 * 12 + 4) / 32)


def test_training_examples_are_random_seeded_and_from_the_trials_subset() -> None:
    x, y = torch.arange(30.0), torch.arange(30)
    ex = training_examples(x, y, 12, seed=1)
    assert len(ex.x) == 12 and set(ex.y.tolist()) == set(range(12))  # all 12, shuffled
    assert ex.y.tolist() != list(range(12))
    assert 0 <= ex.sample_index < 12 and ex.sample.tolist() == [float(ex.sample_index)]
    few = training_examples(x, y, None, seed=1, max_samples=20)
    assert len(few.y) == 20 and few.y.max() >= 20  # drawn from all 30, not the first 20
    again = training_examples(x, y, None, seed=1, max_samples=20)
    assert torch.equal(few.y, again.y) and few.sample_index == again.sample_index
    other = training_examples(x, y, None, seed=2, max_samples=20)
    assert not torch.equal(few.y, other.y)
    assert len(training_examples(x, y, 100).x) == 30


def test_figure2_prefers_a_50_layer_highway_study_else_the_deepest() -> None:
    d20 = record("highway", 20, [trial(0, [0.1])])
    d50a = record("highway", 50, [trial(0, [0.9])], name="a-mnist-highway-d50")
    d50b = record("highway", 50, [trial(0, [0.5])], name="b-mnist-highway-d50")
    d100 = record("highway", 100, [trial(0, [0.2], TrialState.PRUNED)])
    plain = record("plain", 100, [trial(0, [0.1], model="plain")])
    assert pick_highway_study([d20, d50a, d50b, d100, plain]) == (d50b, "")
    chosen, note = pick_highway_study([d20, record("highway", 10, [trial(0, [0.05])]), d100])
    assert chosen is d20 and "deepest" in note and "20 layers" in note
    chosen, note = pick_highway_study([plain, d100])
    assert chosen is None and "No highway study" in note


# --- Search diagnostics -----------------------------------------------------------------------


def test_ecdf_is_monotone_and_ends_at_one() -> None:
    trials = [trial(i, [2.0, v]) for i, v in enumerate([0.5, 0.1, 0.9, 0.3])]
    trials += [trial(9, [1.0], TrialState.PRUNED), trial(10, [], TrialState.FAIL)]
    data = ecdf_data(trials)
    assert data.values == [0.1, 0.3, 0.5, 0.9]  # final (last-epoch) losses, sorted
    assert all(a <= b for a, b in zip(data.fractions, data.fractions[1:], strict=False))
    assert data.fractions[-1] == 1.0 and data.fractions[0] == 0.25
    assert (data.diverged, data.failed) == (1, 1)
    assert ecdf_data([]).values == []


def test_slice_data_has_one_point_per_complete_trial() -> None:
    complete = [trial(i, [1.0 + i]) for i in range(5)]
    diverged = [trial(7, [0.5], TrialState.PRUNED), trial(8, [0.5], TrialState.PRUNED)]
    data = slice_data([*complete, *diverged, trial(9, [], TrialState.FAIL)])
    assert [p.name for p in data.params] == ["lr", "momentum", "lr_decay", "activation",
                                             "gate_bias"]
    assert (data.complete, data.diverged) == (5, 2)
    for p in data.params:
        assert len(p.x) == len(p.y) == len(p.trials) == 5
        assert len(p.diverged_x) == 2
        assert p.y == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert p.x == [t.params[p.name] for t in complete]
    by_name = {p.name: p for p in data.params}
    assert by_name["lr"].log and not by_name["momentum"].log
    assert by_name["activation"].categorical and set(by_name["activation"].x) == {"relu", "tanh"}


def test_importances_need_two_complete_trials() -> None:
    one = importance_data([trial(0, [1.0]), trial(1, [0.5], TrialState.PRUNED)])
    assert one.names == [] and "at least 2" in one.note
    same = importance_data([trial(0, [1.0]), trial(1, [1.0])])
    assert same.names == [] and "same value" in same.note


def test_importances_rank_the_parameters() -> None:
    trials = [trial(i, [0.1 + (i % 5) * 0.3 + 0.01 * i]) for i in range(12)]
    data = importance_data(trials)
    assert data.note == "" and data.method in ("fANOVA", "PED-ANOVA") and data.trials == 12
    assert set(data.names) == {"lr", "momentum", "lr_decay", "activation", "gate_bias"}
    assert sum(data.values) == pytest.approx(1.0)
    assert data.values == sorted(data.values, reverse=True)
    assert importance_data(trials) == data  # seeded: the report is repeatable


def test_importances_of_a_large_study_rest_on_a_seeded_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hwsearch.report.data as report_data

    monkeypatch.setattr(report_data, "IMPORTANCE_SAMPLE", 30)
    # The loss follows lr alone (lr cycles over five decades with the trial number).
    trials = [trial(i, [float(i % 5) + 0.001 * i]) for i in range(80)]
    data = importance_data(trials)
    assert (data.trials, data.complete) == (30, 80)
    assert data.note == "" and data.names[0] == "lr"
    assert importance_data(trials) == data  # the same sample each time
    assert "30 (random) of 80 complete" in figures.importances(data).layout.yaxis.title.text


# --- Reading studies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mnist-highway-d50", ("mnist", "highway", 50)),
        ("run2-mnist-plain-d10", ("mnist", "plain", 10)),
        ("x-fashion-mnist-plain-d100", ("fashion-mnist", "plain", 100)),
        ("cifar100-highway-d20", ("cifar100", "highway", 20)),
        ("mnist-mnist-highway-10-d0", ("mnist", "mnist-highway-10", 0)),
        ("something-else", None),
        ("mnist-resnet-d10", None),
    ],
)
def test_a_study_without_spec_is_known_by_its_name(name: str, expected: tuple | None) -> None:
    spec = spec_of(name, {})
    assert (None if spec is None else (spec["dataset"], spec["model"], spec["depth"])) == expected


def test_the_stored_spec_wins_over_the_name() -> None:
    spec = {"dataset": "fashion-mnist", "model": "plain", "depth": 20, "limit_train": None}
    assert spec_of("mnist-highway-d50", {"spec": spec}) == spec


def test_figure1_adds_the_top_10_runs_mean_and_spread_from_10_complete_trials() -> None:
    """The NeurIPS version's Figure 1: with ≥ 10 complete trials, the mean and the spread of
    the best 10 curves; with 9, none."""
    nine = [trial(i, [1.0 + i, 0.5 + i]) for i in range(9)]
    assert figure1_data([record("plain", 10, nine)]).panels[0].plain_top is None
    twelve = [*nine, *(trial(9 + i, [10.0 + i, 9.0 + i]) for i in range(3))]
    top = figure1_data([record("plain", 10, twelve)]).panels[0].plain_top
    assert (top.n, top.of, top.epochs) == (10, 12, [1, 2])
    best10 = [t for t in twelve if t.number < 10]  # values 0.5..9.5: the best ten
    assert top.mean == [pytest.approx(np.mean([t.intermediate_values[e] for t in best10]))
                        for e in (1, 2)]
    assert (top.low, top.high) == ([1.0, 0.5], [10.0, 9.0])


def test_figure2s_net_is_sought_among_the_best_trials_only(tmp_path: Path) -> None:
    import optuna

    from hwsearch.report.studies import StudyRecord
    from hwsearch.report.write import NET_TRIES, _load_net
    from hwsearch.storage import open_storage

    store = open_storage(f"sqlite:///{tmp_path / 'w.db'}")
    optuna.create_study(study_name="mnist-highway-d50", storage=store.optuna)
    made = [stored_trials.finished_trial(t.params, t.distributions,
                               [{"epoch": 1, "train_loss": 1.0 / (n + 1)}])
            for n, t in enumerate(trial(n, [1.0]) for n in range(NET_TRIES + 5))]
    ids = stored_trials.add_finished_trials(store, "mnist-highway-d50", made)
    # Every trial but the best names weights (as a kept trial does) that were never stored:
    # the best is never read, and each kept one is tried, best first, and skipped.
    import sqlalchemy as sa

    from hwsearch.storage import schema
    from hwsearch.storage.keep import weights_attr

    rows = [dict(zip(("key", "value_json"), weights_attr(f"missing-{i}"), strict=True),
                 trial_id=i) for i in ids[:-1]]
    store.database.write("test", lambda c: c.execute(
        sa.insert(schema.TRIAL_SYSTEM_ATTRIBUTES), rows))
    fetched = []

    def fetch(t):
        fetched.append(t.number)
        return store.optuna.get_trial(store.trial_id("mnist-highway-d50", t.number))

    r = StudyRecord("mnist-highway-d50", "mnist", "highway", 50, {},
                    store.light_trials("mnist-highway-d50"), fetch)
    net, best, note = _load_net(store, r)
    assert net is None and best is None
    assert fetched == list(range(NET_TRIES + 3, 3, -1))  # the best kept first, NET_TRIES
    assert note.startswith(f"None of the {NET_TRIES} best kept trials of mnist-highway-d50")
    store.close()


def test_the_lesion_caption_says_what_the_data_say() -> None:
    from hwsearch.report.nets import LesionData
    from hwsearch.report.sections import lesion_finding

    lower = LesionData([2, 3, 4], [0.30, 0.25, 0.29], 0.31, 100)  # every lesion lowers the CE
    text = lesion_finding(lower)
    assert "No lesion raises the cross-entropy" in text and "hurts most" not in text
    higher = LesionData([2, 3, 4], [0.30, 0.90, 0.32], 0.31, 100)
    assert lesion_finding(higher).startswith("Lesioning layer 3 hurts most (CE 0.9 vs 0.31); 2 "
                                             "of 3 lesions raise")
