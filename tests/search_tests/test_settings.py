"""Launch settings and bad input: one-line errors, exit code 2, stored studies untouched."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hwsearch.search import SearchSpace, build_settings, load_toml
from hwsearch.search.studies import open_study
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
    assert (s.models, s.depths, s.trials, s.limit_train) == (("highway",), (10, 50), 9, 100)
    assert (s.space.lr.low, s.space.lr.high, s.space.lr.log) == (1e-4, 0.5, True)
    assert s.space.activation == ("tanh",)
    assert [spec.study_name("p-") for spec in s.study_specs()] == [
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
    spec = build_settings({"models": "highway", "depths": "2"}).study_specs()[0]
    name = spec.study_name(prefix)
    study = open_study(store.optuna, name, spec, 0, SearchSpace())
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
        "--data-dir",
        str(tmp_path),
    ]
    cases = {
        "malformed TOML": [*base, "--config", str(bad_toml)],
        "unknown key": [*base, "--config", str(unknown)],
        "space.momentum: low 0.9 > high 0.1": [*base, "--config", str(inverted)],
        "unsupported storage dialect": ["launch", "--storage", "oracle://u:pw@h/db"],
        "cannot open storage": [
            "launch",
            "--storage",
            f"postgresql+psycopg://u:{PG_PASSWORD}@127.0.0.1:1/db",
        ],
        "different configuration": [*base, "--epochs", "3"],  # study exists with epochs 50
        "unknown model": [*base[:-4], "--models", "resnet"],
        "depth 0 out of range": [*base[:-2], "--depths", "0"],
    }
    if storage_url.startswith("postgresql"):  # the storage-independent cases ran on SQLite
        cases = {
            k: v
            for k, v in cases.items()
            if k in ("malformed TOML", "different configuration", "cannot open storage")
        }
    for expected, argv in cases.items():
        out = run_hwsearch(*argv, timeout=60)
        assert out.returncode == 2, (expected, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, out.stderr)
        assert PG_PASSWORD not in out.stderr + out.stdout
    assert _snapshot(storage_url, name) == before
