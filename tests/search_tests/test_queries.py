"""status, best and trials answered by queries, against what Optuna itself reads."""

from __future__ import annotations

import csv
import io

import optuna
import pytest

from hwsearch.app import formats, queries
from hwsearch.search.space import SearchSpace
from hwsearch.storage import open_storage
from hwsearch.storage import records as rec
from hwtest import stored_trials


@pytest.fixture
def store(storage_url: str, prefix: str):
    s = open_storage(storage_url)
    dists = SearchSpace().distributions("highway")
    name = f"{prefix}q"
    optuna.create_study(study_name=name, storage=s.optuna)
    for i in range(7):
        params = {"lr": 0.1 / (i + 1), "momentum": 0.5, "lr_decay": 0.5,
                  "activation": ("relu", "tanh")[i % 2], "gate_bias": -2.0}
        # Odd trials as a launch records them today (the stored model's test accuracy at the
        # end, none per epoch); even ones as studies from before 2026-12-06 (every epoch).
        today = i % 2 == 1
        epochs = [{"epoch": e + 1, "train_loss": 1.0 / (i + e + 1),
                   "test_accuracy": None if today else 0.5 + i / 100 + e / 1000}
                  for e in range(i % 3 + 1)]
        attrs = {rec.RAY_NODE_IP: "10.0.0.9", **({rec.TEST_ACCURACY: 0.9 + i / 100} if today
                                                 else {})}
        stored_trials.add_finished_trial(s, name, params, dists, epochs if i != 4 else [],
                                         diverged_epoch=1 if i == 4 else None, attrs=attrs)
    yield s, name
    s.close()


def test_best_and_status_agree_with_optuna(store) -> None:
    s, name = store
    study = optuna.load_study(study_name=name, storage=s.optuna)
    (row,) = queries.best_rows(s, name)
    assert (row["number"], row["value"], row["params"]) == (
        study.best_trial.number, study.best_value, study.best_trial.params)
    (status,) = [r for r in queries.status_rows(s) if r["study"] == name]
    assert (status["complete"], status["diverged"], status["best"]) == (6, 1, study.best_value)


def test_trials_stream_in_pages(store, monkeypatch: pytest.MonkeyPatch) -> None:
    s, name = store
    monkeypatch.setattr(queries, "PAGE", 3)  # 7 trials: pages of 3, 3, 1
    rows = list(queries.trial_rows(s, name))
    assert [r["number"] for r in rows] == list(range(7))
    study = optuna.load_study(study_name=name, storage=s.optuna)
    for row, t in zip(rows, study.trials, strict=True):
        history = rec.history(t)
        assert (row["state"], row["value"], row["epochs"]) == (t.state.name, t.value,
                                                                len(history))
        if t.number % 2:
            assert row["test_accuracy"] == pytest.approx(0.9 + t.number / 100)
        else:
            assert row["test_accuracy"] == (history[-1]["test_accuracy"] if history else None)
        assert row["node"] == "10.0.0.9" and row["param_lr"] == t.params["lr"]
    out = io.StringIO()
    formats.write_rows(queries.trial_rows(s, name), "csv", out)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(table) == 7 and table[4]["outcome"] == "diverged"


def test_an_unknown_study_is_an_error(store) -> None:
    s, _ = store
    with pytest.raises(LookupError, match="no study 'nope'"):
        list(queries.trial_rows(s, "nope"))


def test_status_and_trials_show_stale_running_trials_with_their_beats_age(store) -> None:
    """A launcher killed mid-trial leaves RUNNING trials that no one beats: past their grace
    (3 × their owner's interval) status counts them as stale with the age of their newest
    beat, and trials marks each, in every format; a trial still beating is not stale."""
    from hwtest.heartbeats import backdate_beat

    s, name = store
    study = optuna.load_study(study_name=name, storage=s.optuna)
    lost = [s.ask(study, {}, lambda n: rec.ask_attrs(0, n, "killed", 10))[0] for _ in range(2)]
    live = s.ask(study, {}, lambda n: rec.ask_attrs(0, n, "alive", 10))[0]
    backdate_beat(s.optuna.engine, lost[0], 400)
    backdate_beat(s.optuna.engine, lost[1], 100)  # past 3 × 10 s: the newest stale beat
    (row,) = [r for r in queries.status_rows(s) if r["study"] == name]
    assert (row["running"], row["stale"]) == (3, 2)
    assert 100 <= row["last_beat_s"] < 400
    table = formats.format_rows([row], "table").splitlines()
    assert "stale" in table[0].split() and "last_beat_s" in table[0].split()
    (parsed,) = csv.DictReader(io.StringIO(formats.format_rows([row], "csv")))
    assert parsed["stale"] == "2" and int(parsed["last_beat_s"]) >= 100
    rows = {r["number"]: r for r in queries.trial_rows(s, name)}
    numbers = {s.optuna.get_trial(t).number: t for t in (*lost, live)}
    by_id = {t: rows[n] for n, t in numbers.items()}
    assert by_id[lost[0]]["stale"] is True and by_id[lost[0]]["last_beat_s"] >= 400
    assert by_id[live]["stale"] is False and by_id[live]["last_beat_s"] < 30
    assert all(r["stale"] is None for r in rows.values() if r["state"] != "RUNNING")
    assert s.fail_stale(name, default_interval=10) == 2  # what a relaunch does with them
    (row,) = [r for r in queries.status_rows(s) if r["study"] == name]
    assert (row["running"], row["stale"], row["last_beat_s"]) == (1, 0, None)
