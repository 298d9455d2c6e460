"""Promises the README and docs make that cut across packages, each checked against the text
that makes it: a table in the docs is read and compared with the code, so the two cannot
drift apart, and what a user sees is checked as a user sees it (``hwsearch`` subprocesses)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from hwtest import PG_PASSWORD, REPO, foreign_study, pg_url, run_hwsearch

DOCS = REPO / "docs"


def _table(doc: Path, header: str) -> list[list[str]]:
    """The body rows (cells stripped) of the Markdown table in ``doc`` whose header row starts
    with ``header``."""
    lines = doc.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"no rows under {header!r} in {doc.name}"
    return rows


def _number(text: str) -> float:
    return float(text.replace("−", "-").replace(",", ""))


def test_the_documented_search_space_is_the_code_s() -> None:
    """docs/reproduction.md's search-space table, row by row, is the default ``SearchSpace``:
    each range's distribution and bounds, and which families sample it."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from hwsearch.search.space import SearchSpace

    space = SearchSpace()
    families = {"plain": "plain", "highway": "highway", "conv presets": "mnist-highway-10"}
    documented: dict[str, dict[str, object]] = {family: {} for family in families.values()}
    rows = _table(DOCS / "reproduction.md", "| parameter | distribution |")
    assert len(rows) == 9
    for name_cell, distribution, who, _ in rows:
        name = name_cell.strip("`")
        if distribution.startswith("{"):
            choices = [c.strip() for c in distribution.strip("{}").split(",")]
            dist: object = CategoricalDistribution(choices)
            assert tuple(getattr(space, name)) == tuple(choices), name
        else:
            found = re.match(r"(log-uniform|uniform) \[([^,]+), ([^\]]+)\]", distribution)
            assert found, f"{name}: cannot read {distribution!r}"
            low, high = _number(found[2]), _number(found[3])
            dist = FloatDistribution(low, high, log=found[1] == "log-uniform")
            assert (getattr(space, name).low, getattr(space, name).high) == (low, high), name
        for family in who.split(","):
            # a conv trial's lr, momentum and gate bias are its conv_* ranges
            documented[families[family.strip()]][name.removeprefix("conv_")] = dist
    for family, dists in documented.items():
        assert space.distributions(family) == dists, family


def test_the_documented_parameter_counts_are_the_nets() -> None:
    """docs/cli.md's whole-net parameter table and docs/reproduction.md's conv presets' counts
    are what the nets hold."""
    from hwsearch.models import FCConfig, parameter_count
    from hwsearch.models.fc import FCNet, count_parameters

    rows = _table(DOCS / "cli.md", "| depth | highway (width 50) | plain (width 71) |")
    assert [int(r[0]) for r in rows] == [10, 20, 50, 100]
    for depth, highway, plain in rows:
        for kind, documented in (("highway", highway), ("plain", plain)):
            net = FCNet(FCConfig(kind=kind, depth=int(depth)))
            assert count_parameters(net) == _number(documented), (kind, depth)

    presets = _table(DOCS / "reproduction.md", "| preset | layers | parameters |")
    assert len(presets) == 4
    for name_cell, _, documented, _ in presets:
        found = re.match(r"`([\w-]+)(?: --width (\d+))?`", name_cell)
        assert found, name_cell
        width = int(found[2] or 0)
        assert parameter_count(found[1], width) == _number(documented), name_cell


def _help(*argv: str) -> str:
    from hwsearch.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return out.getvalue()


NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
           "eleven", "twelve")


def test_the_documented_commands_and_every_one_but_train_takes_a_storage() -> None:
    """docs/cli.md: "has N commands", a section for each; README: every command but ``train``
    takes ``--storage URL`` or ``--storage-file FILE``. A command added without its docs, or
    docs that count wrong, fail here."""
    text = (DOCS / "cli.md").read_text()
    documented = []
    for heading in re.findall(r"^## (`hwsearch .+)$", text, re.M):
        documented += [w.removeprefix("hwsearch ") for w in re.findall(r"`([^`]+)`", heading)]
    counted = re.search(r"has (\w+) commands", text)
    assert counted and NUMBERS.index(counted[1]) + 1 == len(documented), counted
    listed = re.search(r"\{([\w,-]+)\}", _help())
    assert listed and sorted(listed[1].split(",")) == sorted(documented)
    for command in documented:
        flags = set(re.findall(r"--[\w-]+", _help(command)))
        takes = {"--storage", "--storage-file"} <= flags
        assert takes == (command != "train"), command


def test_reading_a_postgresql_study_never_shows_its_password(
    pg_database: str, tmp_path: Path
) -> None:
    """The read commands on a PostgreSQL URL that holds a password (given in the environment,
    as a user must): the password is in no output, error or file they write, and the report
    page shows the URL with ``***`` in its place."""
    url = foreign_study(pg_url(pg_database))
    out = tmp_path / "report"
    runs = [run_hwsearch(*argv, "--storage", url, cwd=tmp_path) for argv in (
        ["status"], ["best", "--format", "json"],
        ["trials", "--study", "mnist-highway-d10", "--format", "csv"],
        ["trials", "--study", "no-such-study"],  # an error that names the database
        ["export", "--study", "no-such-study", "--out", str(tmp_path / "m.pt2")],
        ["export", "--study", "mnist-highway-d10", "--out", str(tmp_path / "m.pt2")],
        ["report", "--out", str(out), "--skip-data-figures"])]
    assert [r.returncode for r in runs] == [0, 0, 0, 2, 2, 2, 0], [r.stderr for r in runs]
    for run in runs:
        assert PG_PASSWORD not in run.stdout + run.stderr, run.args
    assert "postgres:***@127.0.0.1" in runs[3].stderr + runs[4].stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert out / "index.html" in written
    assert [p for p in written if PG_PASSWORD.encode() in p.read_bytes()] == []
    assert "postgres:***@127.0.0.1" in (out / "index.html").read_text()


def test_the_documented_numbers_are_the_code_s() -> None:
    """Numbers the docs state as behaviour: Figure 2 averages over 10,000 random training
    examples and the importances rest on at most 1,000 complete trials (reproduction.md); a
    launch beats every 10 s, stops after 5 failed packs in a row and waits 120 s for a claim,
    and a trial is stale after 3 of its owner's intervals (reliability.md)."""
    import torch

    from hwsearch.report.data import IMPORTANCE_SAMPLE
    from hwsearch.report.nets import training_examples
    from hwsearch.search.settings import LaunchSettings
    from hwsearch.storage.records import GRACE_FACTOR
    from hwsearch.storage.store import CLAIM_TIMEOUT_S

    examples = training_examples(torch.zeros(12_000, 1), torch.arange(12_000), None, seed=0)
    assert len(examples.y) == 10_000 and len(set(examples.y.tolist())) == 10_000
    assert IMPORTANCE_SAMPLE == 1_000
    launch = LaunchSettings()
    assert (launch.heartbeat, launch.max_failed_packs) == (10, 5)
    assert (CLAIM_TIMEOUT_S, GRACE_FACTOR) == (120, 3)
