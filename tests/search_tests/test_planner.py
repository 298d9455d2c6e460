"""The pack planner on an in-memory database: exact counts, replacements, grouping, other
launchers' trials, giving up. No Ray, no training, no sleeping: fast, and not marked slow."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

import pytest
from optuna.trial import TrialState

from hwsearch.search.messages import (
    EpochReport,
    FinalReport,
    Node,
    TrialEpoch,
    TrialFinal,
    to_result,
)
from hwsearch.search.planner import Pack, PackPlanner, StudyPlan
from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import open_study
from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage import records as rec
from hwsearch.training import TrainConfig

if TYPE_CHECKING:
    from hwsearch.app.progress import Progress
    from hwsearch.search.searcher import PackSearcher


class Holder:
    def __init__(self, store: StudyStorage) -> None:
        self.store, self.held = store, set()

    def add(self, trial_id: int) -> None:
        self.store.record_heartbeat(trial_id)
        self.held.add(trial_id)

    def discard(self, trial_id: int) -> None:
        self.held.discard(trial_id)


class Events:
    """What the planner told the user, in order."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def finished(self, study: str, value: float | None, diverged: bool = False,
                 trial: int | None = None) -> None:
        self.log.append(("finished", study, value, diverged))

    def failed(self, study: str, trial: int | None = None) -> None:
        self.log.append(("failed", study))

    def note(self, message: str) -> None:
        self.log.append(("note", message))

    def of(self, kind: str) -> list[tuple]:
        return [e[1:] for e in self.log if e[0] == kind]


@pytest.fixture
def store() -> Iterator[StudyStorage]:
    s = open_storage("sqlite:///:memory:")
    yield s
    s.close()


def make_plans(
    store: StudyStorage, target: int, studies: tuple[str, ...] = ("highway",),
    activations: tuple[str, ...] = ("relu", "tanh"),
) -> dict[str, StudyPlan]:
    space = SearchSpace(activation=activations)
    plans = {}
    for model in studies:
        config = TrainConfig(model=model, depth=2, epochs=1)
        name = f"mnist-{model}-d2"
        study = open_study(store.optuna, name, config, 0, space)
        plans[name] = StudyPlan(study, target, space.distributions(model), config.to_dict(), 0)
    return plans


def make_planner(
    store: StudyStorage, plans: dict[str, StudyPlan], pack_size: int, **kw
) -> tuple[PackPlanner, Holder, Events]:
    holder, events = Holder(store), Events()
    planner = PackPlanner(store, plans, pack_size, holder=holder, events=events,
                          launcher_id="test", heartbeat_interval=10, **kw)
    return planner, holder, events


def complete(planner: PackPlanner, pack: Pack, value: float = 0.5) -> None:
    final = FinalReport([TrialFinal(t.number, None, value, True) for t in pack.trials], 10)
    planner.finish(pack, final, {t.number: b"weights" for t in pack.trials})


def drain(planner: PackPlanner) -> list[Pack]:
    packs = []
    while (pack := planner.next_pack()) is not None:
        packs.append(pack)
    return packs


def states(store: StudyStorage, name: str) -> list[str]:
    trials = store.optuna.get_all_trials(store.study_id(name))
    return sorted(t.state.name for t in trials)


def test_asks_exactly_the_target_in_full_packs_of_mixed_activations(
    store: StudyStorage,
) -> None:
    plans = make_plans(store, target=7)
    planner, holder, _ = make_planner(store, plans, pack_size=3)
    packs = drain(planner)
    numbers = sorted(t.number for p in packs for t in p.trials)
    assert numbers == list(range(7))  # exactly the target, nothing more
    assert [len(p.trials) for p in packs] == [3, 3, 1]  # full packs; the rest flushed
    assert len({t.params["activation"] for p in packs for t in p.trials}) == 2
    assert len(holder.held) == 7  # every asked trial beats
    assert store.counts("mnist-highway-d2").running == 7
    assert planner.next_pack() is None and not planner.all_done()


def test_a_pack_config_carries_seeds_and_the_protocol(store: StudyStorage) -> None:
    plans = make_plans(store, target=2, activations=("tanh",))
    planner, _, _ = make_planner(store, plans, pack_size=2)
    (pack,) = drain(planner)
    config = planner.pack_config(pack)
    assert config.numbers == [0, 1] and config.train["model"] == "highway"
    assert [p["seed"] for p in config.params] == [rec.trial_seed(0, 0), rec.trial_seed(0, 1)]
    trial = store.optuna.get_trial(pack.trials[0].trial_id)
    assert trial.user_attrs[rec.PACK_SIZE] == 2 and trial.user_attrs[rec.LAUNCHER] == "test"
    assert trial.user_attrs[rec.HEARTBEAT_INTERVAL] == 10


def test_completed_diverged_and_lost_trials(store: StudyStorage) -> None:
    name = "mnist-highway-d2"
    plans = make_plans(store, target=3, activations=("tanh",))
    planner, holder, events = make_planner(store, plans, pack_size=3)
    (pack,) = drain(planner)
    a, b, c = pack.trials
    record = {"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.8, "test_accuracy": 0.8,
              "lr": 0.1, "seconds": 1.0}
    planner.record_epoch(pack, EpochReport(1, [TrialEpoch(a.number, record, None),
                                               TrialEpoch(b.number, None, 1),
                                               TrialEpoch(c.number, record, None)],
                                           Node("n1", "10.0.0.1", "host")))
    final = FinalReport([TrialFinal(a.number, None, 0.7, True, test_accuracy=0.91)], 10)
    planner.finish(pack, final, {a.number: b"w"})  # c: no final entry, so it was lost
    trials = {t.number: t for t in store.optuna.get_all_trials(store.study_id(name))}
    assert trials[a.number].state == TrialState.COMPLETE and trials[a.number].value == 0.7
    assert rec.test_accuracy(trials[a.number]) == 0.91  # the stored model's, from the end
    assert rec.TEST_ACCURACY not in trials[b.number].user_attrs
    assert rec.history(trials[a.number]) == [record]
    assert trials[a.number].intermediate_values == {1: 0.7}
    assert trials[a.number].user_attrs[rec.RAY_NODE_IP] == "10.0.0.1"
    assert trials[b.number].state == TrialState.PRUNED
    assert rec.outcome(trials[b.number]) == rec.DIVERGED
    assert rec.diverged_epoch(trials[b.number]) == 1
    assert trials[c.number].state == TrialState.FAIL
    assert "infrastructure failure" in rec.outcome(trials[c.number])
    assert not holder.held
    assert events.of("failed") == [(name,)] and len(events.of("finished")) == 2
    # The lost trial is replaced: one more ask, numbered after the others.
    (again,) = drain(planner)
    assert [t.number for t in again.trials] == [3]


def test_exact_counts_with_failures_replaced(store: StudyStorage) -> None:
    name = "mnist-highway-d2"
    plans = make_plans(store, target=5)
    planner, _, _ = make_planner(store, plans, pack_size=2)
    lost_once = False
    while not planner.all_done():
        for pack in drain(planner):
            if not lost_once:
                planner.finish(pack, None, {})  # the worker died
                lost_once = True
            else:
                complete(planner, pack)
    c = store.counts(name)
    assert (c.complete, c.running) == (5, 0)
    assert c.failed >= 1 and c.finished == 5  # the lost pack's trials, replaced


def test_counts_other_launchers_running_trials(store: StudyStorage) -> None:
    plans = make_plans(store, target=4)
    first, _, _ = make_planner(store, plans, pack_size=4)
    second, _, _ = make_planner(store, plans, pack_size=4)
    got_first = drain(first)
    assert sum(len(p.trials) for p in got_first) == 4
    assert drain(second) == []  # all four are someone's running trials: nothing to ask
    for pack in got_first:
        complete(first, pack)
    assert second.all_done() and first.all_done()


def test_stale_trials_of_a_dead_launcher_are_replaced(store: StudyStorage) -> None:
    """A launcher that stopped beating: its trials go stale after 3 of its intervals (a
    heartbeat of 0 s here, so at once) and are replaced."""
    plans = make_plans(store, target=2, activations=("tanh",))
    dead_events = Events()
    dead = PackPlanner(store, plans, 2, holder=Holder(store), events=dead_events,
                       launcher_id="dead", heartbeat_interval=0)
    lost = dead.next_pack()  # (draining would fail its own trials: its grace period is 0)
    alive, _, events = make_planner(store, plans, pack_size=2)
    (pack,) = drain(alive)
    assert [t.number for t in pack.trials] == [2, 3]
    trials = store.optuna.get_all_trials(store.study_id("mnist-highway-d2"))
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [0, 1]
    assert all("heartbeat" in rec.outcome(t) for t in failed)
    # The dead launcher comes back: its trials are gone; it says so and carries on.
    complete(dead, lost)
    notes = dead_events.of("note")
    assert len(notes) == 2 and "taken over" in notes[0][0]
    assert [t.state for t in store.optuna.get_all_trials(store.study_id("mnist-highway-d2"))
            if t.number in (0, 1)] == [TrialState.FAIL] * 2


def test_orphan_running_trial_never_beaten_goes_stale(store: StudyStorage) -> None:
    """A RUNNING trial nobody beats for (asked by another client): its grace period starts
    when a launcher first sees it, so it cannot stall a launch forever."""
    plans = make_plans(store, target=1, activations=("tanh",))
    plan = plans["mnist-highway-d2"]
    plan.study.ask()  # an outside ask: no heartbeat, no recorded interval
    planner, _, _ = make_planner(store, plans, pack_size=1)
    assert drain(planner) == []  # first seen: its grace period starts now
    assert store.fail_stale("mnist-highway-d2", default_interval=0) == 1
    (pack,) = drain(planner)
    assert [t.number for t in pack.trials] == [1]


def test_several_studies_neediest_first(store: StudyStorage) -> None:
    plans = make_plans(store, target=3, studies=("plain", "highway"), activations=("relu",))
    planner, _, _ = make_planner(store, plans, pack_size=3)
    packs = drain(planner)
    assert sorted(p.study for p in packs) == ["mnist-highway-d2", "mnist-plain-d2"]
    for pack in packs:
        complete(planner, pack)
    assert planner.all_done()


def test_costliest_studies_first_then_the_neediest(store: StudyStorage) -> None:
    """Largest packs first, so the last to run are the cheapest: the plain study is made the
    costlier, and all its packs come before the highway study's."""
    plans = make_plans(store, 4, studies=("highway", "plain"))
    plans["mnist-plain-d2"].cost = 10.0
    planner, _, _ = make_planner(store, plans, 2)
    assert [p.study for p in drain(planner)] == ["mnist-plain-d2"] * 2 + ["mnist-highway-d2"] * 2


def test_a_familys_trial_cost_grows_with_its_net() -> None:
    from hwsearch.training import family

    def cost(model: str, **kw: object) -> float:
        return family(model).trial_flops(TrainConfig(model=model, **kw))  # type: ignore[arg-type]

    assert cost("highway", depth=100) > cost("highway", depth=50) > cost("highway", depth=10)
    assert cost("highway", depth=10) == 2 * 50 * (784 + 9 * 2 * 50 + 10)
    assert cost("plain", depth=10) == 2 * 71 * (784 + 9 * 71 + 10)
    assert cost("mnist-highway-10", width=32) > cost("mnist-highway-10") > 0


def test_gives_up_after_failed_packs_in_a_row(store: StudyStorage) -> None:
    plans = make_plans(store, target=10, activations=("tanh",))
    planner, _, _ = make_planner(store, plans, pack_size=1, max_failed_packs=3)
    for _ in range(2):
        pack = planner.next_pack()
        pack.error = "RuntimeError: no data"
        planner.finish(pack, None, {})
    assert not planner.gave_up
    complete(planner, planner.next_pack())  # a success resets the run of failures
    for _ in range(3):
        pack = planner.next_pack()
        planner.finish(pack, None, {})
    assert planner.gave_up and planner.last_error == "the worker was lost"


def test_release_fails_what_the_launcher_holds(store: StudyStorage) -> None:
    plans = make_plans(store, target=4)
    planner, holder, _ = make_planner(store, plans, pack_size=3)
    pack = planner.next_pack()  # asks 3 for the pack; the study's 4th is asked later
    planner._ask_into_buffers("mnist-highway-d2")  # the 4th now waits in the buffer
    buffered = sum(len(b) for b in planner.buffers.values())
    assert buffered == 1
    asked = len(pack.trials) + buffered
    planner.release_pack(pack, "launcher stopped")
    planner.release("launcher stopped")
    c = store.counts("mnist-highway-d2")
    assert (c.failed, c.running) == (asked, 0) and not holder.held
    trials = store.optuna.get_all_trials(store.study_id("mnist-highway-d2"))
    assert {rec.outcome(t) for t in trials} == {"launcher stopped"}


def test_a_late_divergence_keeps_its_best_value_and_weights(store: StudyStorage) -> None:
    """Diverged at epoch 2 after a good epoch 1: COMPLETE with epoch 1's value and weights,
    outcome diverged; one that diverged in epoch 1 is PRUNED. Both count as finished."""
    from hwsearch.storage.weights import weights_artifact_id

    name = "mnist-highway-d2"
    plans = make_plans(store, target=2, activations=("tanh",))
    planner, _, events = make_planner(store, plans, pack_size=2)
    (pack,) = drain(planner)
    late, early = pack.trials
    record = {"epoch": 1, "train_loss": 0.6, "running_loss": 0.7, "train_accuracy": 0.8,
              "test_accuracy": 0.8, "lr": 0.1, "seconds": 1.0}
    planner.record_epoch(pack, EpochReport(1, [TrialEpoch(late.number, record, None),
                                               TrialEpoch(early.number, None, 1)]))
    planner.record_epoch(pack, EpochReport(2, [TrialEpoch(late.number, None, 2),
                                               TrialEpoch(early.number, None, 1)]))
    assert store.counts(name).pruned == 1  # the early one at once; the late one waits
    final = FinalReport([TrialFinal(late.number, 2, 0.6, True, test_accuracy=0.83),
                         TrialFinal(early.number, 1, float("inf"), False)], 10)
    planner.finish(pack, final, {late.number: b"best-epoch weights"})
    trials = {t.number: t for t in store.optuna.get_all_trials(store.study_id(name))}
    t = trials[late.number]
    assert (t.state, t.value, rec.outcome(t), rec.diverged_epoch(t)) == (
        TrialState.COMPLETE, 0.6, rec.DIVERGED, 2)
    assert t.user_attrs[rec.TEST_ACCURACY] == 0.83  # its best epoch's weights were tested
    assert weights_artifact_id(store, t) is not None
    assert trials[early.number].state == TrialState.PRUNED
    c = store.counts(name)
    assert (c.finished, c.diverged, c.best) == (2, 2, 0.6)
    assert [e for e in events.of("finished")] == [(name, None, True), (name, 0.6, True)]


def test_release_hands_back_every_trial_of_this_launcher(store: StudyStorage) -> None:
    """Stopped mid-ask, a launcher holds a trial it never buffered: release fails it too
    (so a rerun replaces it at once), and leaves other launchers' trials alone."""
    plans = make_plans(store, target=4, activations=("tanh",))
    plan = plans["mnist-highway-d2"]
    planner, _, _ = make_planner(store, plans, pack_size=1)
    live = planner.next_pack()
    mid_ask = store.ask(plan.study, plan.distributions,
                        lambda n: rec.ask_attrs(0, n, planner.launcher_id, 10))[0]
    other = store.ask(plan.study, plan.distributions, lambda n: rec.ask_attrs(0, n, "other", 10))[0]
    planner.release_pack(live, "stopped")
    planner.release("stopped")
    got = {store.trial_id(plan.name, t.number): t
           for t in store.optuna.get_all_trials(store.study_id(plan.name))}
    assert got[mid_ask].state == TrialState.FAIL and rec.outcome(got[mid_ask]) == "stopped"
    assert got[live.trials[0].trial_id].state == TrialState.FAIL
    assert got[other].state == TrialState.RUNNING


@pytest.mark.parametrize("model", ["highway", "mnist-highway-10"])
def test_each_trial_starts_with_its_sampled_gate_bias(store: StudyStorage, model: str
                                                      ) -> None:
    """The worker's path from a planned pack to its nets: every highway layer's transform-gate
    bias starts at the value sampled for that trial (and stored with it), not a default."""
    import torch

    from hwsearch.training import Hyperparams
    from hwsearch.training.data import Dataset
    from hwsearch.training.trainer import build_engine

    space = SearchSpace(activation=("relu",))
    config = TrainConfig(model=model, depth=3 if model == "highway" else 10, width=4, epochs=1)
    study = open_study(store.optuna, "s", config, 0, space)
    plans = {"s": StudyPlan(study, 3, space.distributions(model), config.to_dict(), 0)}
    planner, _, _ = make_planner(store, plans, pack_size=3)
    (pack,) = drain(planner)
    sent = planner.pack_config(pack)
    stored = {t.number: t.params["gate_bias"]
              for t in store.optuna.get_all_trials(store.study_id("s"))}
    # as the worker does (search/trainable.py): the config and each trial's hyperparameters
    train_config = TrainConfig(**sent.train)
    hps = [Hyperparams.for_model(train_config.model, **p) for p in sent.params]
    g = torch.Generator().manual_seed(0)
    shape = (1, 28, 28)
    data = Dataset("mnist", torch.rand(8, *shape, generator=g), torch.randint(0, 10, (8,)),
                   torch.rand(4, *shape, generator=g), torch.randint(0, 10, (4,)), 10)
    engine, _ = build_engine(train_config, hps, data, packed=True)
    assert len(set(stored.values())) == 3  # three different draws
    for i, number in enumerate(sent.numbers):
        weights = engine.trial_state_dict(i)
        gate_biases = [v for k, v in weights.items() if k.endswith(".t.bias")]
        assert gate_biases
        for bias in gate_biases:
            torch.testing.assert_close(bias, torch.full_like(bias, stored[number]), rtol=0,
                                       atol=1e-6)


@pytest.mark.parametrize(("keep", "kept"), [("top:2", 2), ("all", 4), ("none", 0)])
def test_the_planner_keeps_weights_by_policy(store: StudyStorage, keep: str, kept: int) -> None:
    """Every trial completes with its value; only the policy's best keep their weights."""
    from hwsearch.storage.keep import KeepPolicy, kept_numbers

    name = "mnist-highway-d2"
    plans = make_plans(store, target=4, activations=("tanh",))
    planner, _, _ = make_planner(store, plans, pack_size=4, keep=KeepPolicy.parse(keep))
    (pack,) = drain(planner)
    values = [0.4, 0.1, 0.3, 0.2]
    final = FinalReport([TrialFinal(t.number, None, v, True)
                         for t, v in zip(pack.trials, values, strict=True)], 10)
    planner.finish(pack, final, {t.number: b"weights" for t in pack.trials})
    assert store.counts(name).complete == 4
    by_value = [t.number for _, t in sorted(zip(values, pack.trials, strict=True))]
    assert kept_numbers(store, name) == by_value[:kept]


EPOCH_RECORD = {"epoch": 1, "train_loss": 0.5, "running_loss": 0.6, "train_accuracy": 0.8,
                "test_accuracy": 0.8, "lr": 0.1, "seconds": 1.0}


def _pack_of_two_with_progress(store: StudyStorage, out: TextIO, every: float) -> tuple[
        Progress, PackSearcher, int, int]:
    """A searcher handing out one pack of two trials (4 epochs each), its planner's and its
    own events shown by a :class:`Progress` on ``out``: (progress, searcher, ok, bad)."""
    from hwsearch.app.progress import Progress
    from hwsearch.search.searcher import PackSearcher  # imports Ray: only where it is used

    plans = make_plans(store, target=2, activations=("tanh",))
    progress = Progress(out=out, every=every)
    planner = PackPlanner(store, plans, 2, holder=Holder(store), events=progress,
                          launcher_id="test", heartbeat_interval=10)
    progress.begin("sqlite://", 2, 2, {n: store.counts(n) for n in plans}, epochs=4)
    searcher = PackSearcher(planner, progress, sink=None)
    assert searcher.suggest("t1") is not None
    ok, bad = searcher.live["t1"].trials
    return progress, searcher, ok.number, bad.number


def _first_epoch_bad_diverges(searcher: PackSearcher, ok: int, bad: int) -> None:
    searcher.on_trial_result("t1", to_result(EpochReport(
        1, [TrialEpoch(ok, EPOCH_RECORD, None), TrialEpoch(bad, None, 1)])))


def test_progress_counts_a_first_epoch_divergence_once(store: StudyStorage) -> None:
    """A trial that diverges in its first epoch is finished when that epoch is recorded; the
    epoch's report must not then count it as running too (the 8-epoch grid once showed
    "352/320 epochs, 4 running, 4 diverged" for a study whose every trial had ended)."""
    progress, searcher, ok, bad = _pack_of_two_with_progress(store, io.StringIO(), every=1e9)
    _first_epoch_bad_diverges(searcher, ok, bad)
    study = progress.studies["mnist-highway-d2"]
    assert study.running == {ok: 1} and study.diverged == 1
    assert progress.work_done() == 4 + 1  # the diverged trial's planned epochs, one of ok's
    searcher.on_trial_result("t1", to_result(EpochReport(
        2, [TrialEpoch(ok, {**EPOCH_RECORD, "epoch": 2}, None), TrialEpoch(bad, None, 1)])))
    assert study.running == {ok: 2} and progress.work_done() == 6


def test_no_progress_line_shows_half_an_epoch_report(store: StudyStorage) -> None:
    """A report in which one trial diverges and its pack-mate goes on is counted whole before
    any line is printed (a line printed between the two once showed the 10-minute grid at
    "1/320 trial-epochs done, ETA 6:19:07" for a minute)."""
    out = io.StringIO()
    _, searcher, ok, bad = _pack_of_two_with_progress(store, out, every=0.0)  # every tick prints
    before = len(out.getvalue())
    _first_epoch_bad_diverges(searcher, ok, bad)
    lines = [line for line in out.getvalue()[before:].splitlines()
             if "trial-epochs done" in line]
    assert lines and all(line.startswith("[hwsearch] 5/8 trial-epochs done") for line in lines), \
        lines
