"""Launch settings and bad input: one-line errors, exit code 2, stored studies untouched."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from hwsearch.search.settings import build_settings, load_toml
from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import open_study, study_name
from hwsearch.storage import open_storage
from hwsearch.training import ConfigError
from hwtest import PG_PASSWORD, run_hwsearch


def test_toml_overrides_space_and_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'models = ["highway"]\ndepths = [10, 50]\ntrials = 7\n'
        "limit-train = 100\n[space]\nlr = {low = 1e-4, high = 0.5}\n"
        'activation = ["tanh"]\n'
    )
    values = load_toml(cfg)
    values["trials"] = 9  # a flag given on the command line wins over the file
    s = build_settings(values)
    assert (s.models, s.depths, s.trials, s.train.limit_train) == (("highway",), (10, 50), 9, 100)
    assert (s.space.lr.low, s.space.lr.high, s.space.lr.log) == (1e-4, 0.5, True)
    assert s.space.activation == ("tanh",)
    assert [study_name(c, "p-") for c in s.configs()] == [
        "p-mnist-highway-d10",
        "p-mnist-highway-d50",
    ]


def test_space_has_gate_bias_for_highway_only() -> None:
    space = SearchSpace()
    assert "gate_bias" in space.distributions("highway")
    assert "gate_bias" not in space.distributions("plain")
    gb = space.distributions("highway")["gate_bias"]
    assert (gb.low, gb.high) == (-10.0, -1.0)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"space": {"lr": {"low": 0.5, "high": 0.1}}}, "space.lr: low 0.5 > high 0.1"),
        ({"space": {"gate_bias": {"low": -1, "high": -10}}}, "low -1.0 > high -10.0"),
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"space": {"bogus": {}}}, "unknown key space.bogus"),
        ({"depths": "10,x"}, "bad depths"),
        ({"models": "plain,resnet"}, "unknown model 'resnet'"),
        ({"trials": 0}, "trials 0 must be >= 1"),
        ({"epochs": 1.5}, "bad value for epochs"),
    ],
)
def test_bad_settings_name_the_value(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_settings(values)


def _snapshot(url: str, name: str) -> list[tuple]:
    study = optuna.load_study(study_name=name, storage=url)
    return [(t.number, t.state, t.value, t.params) for t in study.get_trials()]


def test_bad_input_exits_2_in_one_line_and_keeps_studies(
    storage_url: str, prefix: str, tmp_path: Path
) -> None:
    store = open_storage(storage_url)
    config = build_settings({"models": "highway", "depths": "2"}).configs()[0]
    name = study_name(config, prefix)
    study = open_study(store.optuna, name, config, 0, SearchSpace())
    t = study.ask(SearchSpace().distributions("highway"))
    study.tell(t, 1.5)
    store.close()
    before = _snapshot(storage_url, name)

    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("trials = [unclosed\n")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("trails = 4\n")
    inverted = tmp_path / "inverted.toml"
    inverted.write_text("[space]\nmomentum = {low = 0.9, high = 0.1}\n")
    base = [
        "launch",
        "--storage",
        storage_url,
        "--study-prefix",
        prefix,
        "--models",
        "highway",
        "--depths",
        "2",
        # The data is checked first; --download without --data-dir leaves it to the workers
        # (nothing is fetched: every case is refused before), so the other checks run.
        "--download",
    ]
    cases = {
        "malformed TOML": [*base, "--config", str(bad_toml)],
        "unknown key": [*base, "--config", str(unknown)],
        "space.momentum: low 0.9 > high 0.1": [*base, "--config", str(inverted)],
        "unsupported storage dialect": [
            "launch", "--download", "--storage", "oracle://u:pw@h/db"
        ],
        "cannot open storage": [
            "launch",
            "--download",
            "--storage",
            f"postgresql+psycopg://u:{PG_PASSWORD}@127.0.0.1:1/db",
        ],
        "different configuration": [*base, "--epochs", "3"],  # study exists with epochs 50
        "unknown model": [*base[:5], "--models", "resnet", "--depths", "2"],
        "depth 0 out of range": [*base[:7], "--depths", "0"],
    }
    if storage_url.startswith("postgresql"):  # the storage-independent cases ran on SQLite
        cases = {
            k: v
            for k, v in cases.items()
            if k in ("malformed TOML", "different configuration", "cannot open storage")
        }
    for expected, argv in cases.items():
        out = run_hwsearch(*argv, timeout=120)
        assert out.returncode == 2, (expected, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, out.stderr)
        assert PG_PASSWORD not in out.stderr + out.stdout
    assert _snapshot(storage_url, name) == before


def _flags(command: str) -> set[str]:
    from hwsearch.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command")  # noqa: SLF001
    return {a.dest for a in sub.choices[command]._actions if a.option_strings} - {"help"}


def test_every_setting_has_a_flag_and_a_key_and_the_reverse() -> None:
    from hwsearch.search.settings import setting_keys

    launch_keys, train_keys = setting_keys()
    keys = launch_keys | train_keys
    flags = _flags("launch")
    # The file itself has a flag and no key; the search space is a table, a key and no flag.
    assert flags - {"config", "quiet"} == keys - {"space"}
    for key in keys - {"space"}:  # each key is accepted in a config file
        assert key in launch_keys | train_keys
    assert build_settings({"epochs": "7", "pack": "auto", "cpus-per-trial": 2}).train.epochs == 7


def test_train_flags_are_the_training_settings() -> None:
    from hwsearch.options import options_of
    from hwsearch.training import Hyperparams, TrainConfig

    fields = {f.name for cls in (TrainConfig, Hyperparams) for f, _ in options_of(cls)}
    assert _flags("train") - {"json", "quiet"} == fields


@pytest.mark.parametrize(
    "values, message",
    [
        ({"width": 10_000_000}, "width 10000000 must be <= 4096"),
        ({"cpus_per_trial": 0.000001}, "cpus-per-trial 1e-06 must be 0 (auto) or >= 0.01"),
        ({"gpus_per_trial": float("inf")}, "gpus-per-trial inf must be finite"),
        ({"trials": 1_000_000_000}, "trials 1000000000 must be <= 100000"),
        ({"pack": 1_000_000_000}, "pack 1000000000 must be <= 4096"),
        ({"space": {"lr": {"high": float("inf")}}}, "must be finite"),
        ({"depths": "0"}, "depth 0 out of range"),
    ],
)
def test_numbers_are_bounded(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_settings(values)


def test_auto_packs_give_each_local_core_a_one_thread_pack() -> None:
    import os

    from hwsearch.search.packing import cpus_per_pack, pick_pack_size

    cores = os.cpu_count() or 1
    few = build_settings({"models": "highway", "depths": "10", "trials": 8})
    assert cpus_per_pack(few) == 1.0
    assert pick_pack_size(few) == -(-8 // max(cores, 1))
    many = build_settings({"trials": 40})  # a study in one pack per core, at most 20 each
    packs = max(cores, 2)
    assert pick_pack_size(many) == -(-40 // packs)
    if cores == 2:
        assert pick_pack_size(many) == 20 and pick_pack_size(few) == 4
        assert pick_pack_size(build_settings({"trials": 50})) == 17  # 17, 17, 16
    cluster = build_settings({"trials": 40, "ray_address": "10.0.0.1:6379"})
    assert pick_pack_size(cluster) == 8  # a cluster's cores are not this machine's
    gpu = build_settings({"trials": 40, "gpus_per_trial": 1})
    assert pick_pack_size(gpu) == 40  # on a GPU a study is one pack
    assert cpus_per_pack(build_settings({"cpus_per_trial": 2})) == 2.0
