"""Help that answers: every flag of every command has a help line that says its default, no
markup leaks into it, every command takes --quiet, and ``hwsearch --version`` answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from hwsearch.cli import build_parser, main
from hwtest import REPO

COMMANDS = ("train", "launch", "status", "best", "trials", "dashboard", "report", "export",
            "prune-weights")
OPTION = re.compile(r"^  (-\S+)")  # an option's first line in argparse's help


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> dict[str, str]:
    """Each option's help entry (its lines joined), by its first flag."""
    section = text.split("options:", 1)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in section.splitlines():
        m = OPTION.match(line)
        if m:
            current = m[1].rstrip(",")
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_with_its_default(command: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, command)
    assert "`" not in text and "**" not in text, text  # no markup leaks
    entries = _entries(text)
    assert "--quiet" in text
    flags = [f for f in entries if f not in ("-h",)]
    assert len(flags) >= 2
    for flag in flags:
        words = " ".join(entries[flag].split()[1:])
        assert "default" in words, f"{command} {flag}: {entries[flag]}"


def test_every_subcommand_is_walked() -> None:
    listed = build_parser().format_help()
    choices = re.findall(r"\{([\w,-]+)\}", listed)[0]
    assert set(choices.split(",")) == set(COMMANDS)  # a new command gets its help walked too
    assert "`" not in listed


def test_launch_help_shows_the_launch_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    entries = _entries(_help(capsys, "launch"))
    assert "(default 50)" in entries["--epochs"]  # a launch's, not a single trial's 10
    assert "(default plain,highway)" in entries["--models"]
    assert "(default 10,20,50,100)" in entries["--depths"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert re.fullmatch(r"hwsearch \S+\n", capsys.readouterr().out)


def test_a_misspelt_model_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["launch", "--models", "plian", "--depths", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'plian' (did you mean 'plain'?); allowed:" in err, err
    assert err.count("\n") == 1


def test_best_json_is_machine_readable(tmp_path) -> None:  # noqa: ANN001
    import optuna

    url = f"sqlite:///{tmp_path / 'h.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="mnist-plain-d2", storage=url)
    study.optimize(lambda t: t.suggest_float("lr", 1e-3, 1.0, log=True), n_trials=2)
    for fmt in ("json", "csv", "table"):
        done = subprocess.run([sys.executable, "-m", "hwsearch", "best", "--storage", url,
                               "--format", fmt, "--quiet"], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        if fmt == "json":
            (row,) = json.loads(done.stdout)
            assert row["study"] == "mnist-plain-d2" and "lr" in row["params"]
        elif fmt == "csv":
            assert done.stdout.splitlines()[0] == "study,number,value,params"


def test_the_report_says_its_stages_unless_quiet(tmp_path) -> None:  # noqa: ANN001
    import optuna

    url = f"sqlite:///{tmp_path / 'r.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="mnist-plain-d2", storage=url)
    for quiet in (False, True):
        out = tmp_path / f"out-{quiet}"
        done = subprocess.run([sys.executable, "-m", "hwsearch", "report", "--storage", url,
                               "--out", str(out), "--skip-data-figures",
                               *(["--quiet"] if quiet else [])],
                              capture_output=True, text=True, cwd=REPO, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(out / "index.html")  # the result, on stdout
        stages = re.findall(r"^report: stage (\d)/6: ", done.stderr, re.M)
        assert stages == ([] if quiet else ["1", "2", "3", "4", "5", "6"]), done.stderr
