"""Random search that a seed reproduces, whatever the order of asks."""

from __future__ import annotations

import optuna

from hwsearch.search.sampler import SeededRandomSampler
from hwsearch.search.space import SearchSpace


def _params(seed: int, name: str = "s", n: int = 5) -> list[dict]:
    study = optuna.create_study(study_name=name, sampler=SeededRandomSampler(seed))
    dists = SearchSpace().distributions("highway")
    return [study.ask(dists).params for _ in range(n)]


def test_same_seed_same_parameter_sets() -> None:
    assert _params(3) == _params(3)


def test_other_seed_or_study_differs() -> None:
    assert _params(3) != _params(4)
    assert _params(3, "a") != _params(3, "b")


def test_draws_depend_on_trial_number_not_order() -> None:
    """Trial 2's values are the same whether trials 0 and 1 were asked before it or failed."""
    a = _params(5, n=3)
    study = optuna.create_study(study_name="s", sampler=SeededRandomSampler(5))
    dists = SearchSpace().distributions("highway")
    first = study.ask(dists)
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    study.ask()  # a trial asked with no distributions samples nothing
    third = study.ask(dists)
    assert first.params == a[0] and third.params == a[2]


def test_values_cover_the_space() -> None:
    params = _params(0, n=200)
    lrs = [p["lr"] for p in params]
    assert min(lrs) < 1e-4 and max(lrs) > 1e-2  # log-uniform over a wide range
    assert {p["activation"] for p in params} == {"relu", "tanh"}
    assert all(-10 <= p["gate_bias"] <= -1 for p in params)


def test_trials_asked_together_draw_by_number_whatever_samples_first() -> None:
    """Concurrent launchers ask trials before sampling them: trial 0 sampled after trial 1
    still gets trial 0's values (the draw depends on its number, not on what the study holds)."""
    alone = _params(5, n=2)
    study = optuna.create_study(study_name="s", sampler=SeededRandomSampler(5))
    dists = SearchSpace().distributions("highway")
    first, second = study.ask(), study.ask()
    late, early = _sample(second, dists), _sample(first, dists)
    assert (early, late) == (alone[0], alone[1])


def _sample(trial: optuna.Trial, dists: dict) -> dict:
    """Each parameter drawn through the trial's public suggest calls."""
    out = {}
    for name, dist in dists.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            out[name] = trial.suggest_categorical(name, dist.choices)
        else:
            out[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return out
