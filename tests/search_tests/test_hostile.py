"""Hostile input, as a table: each row is something a user (or an attacker with a shell) tried.
Every one must be refused in one line on stderr that names the bad value, exit code 2, with no
password in the output and nothing created (no database file, no study, no output).

Rows of issue 11's first table that belong here: out-of-bound numbers, a password in a query
string, a typo next to a password, a read command on a database that does not exist, and a
report ``--out`` that is a file. The dashboard's rows are in test_dashboard.py; the launch-time
faults (stale trials, database outages, signals) in the chaos suite.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest

from hwtest import foreign_study, hwsearch_env

SECRET = "pw-hostile-7q2"


@dataclass(frozen=True)
class Row:
    id: str
    argv: list[str]
    says: tuple[str, ...]  # what the one line must contain
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # made in the working directory first


ROWS = [
    # Numbers: finite, positive where they must be, bounded.
    Row("width", ["launch", "--width", "10000000"], ("width 10000000 must be <= 4096",)),
    Row("cpus-per-trial", ["launch", "--cpus-per-trial", "0.000001"],
        ("cpus-per-trial 1e-06 must be 0 (auto) or >= 0.01",)),
    Row("gpus-per-trial inf", ["launch", "--gpus-per-trial", "inf"],
        ("gpus-per-trial inf must be finite",)),
    Row("gpus-per-trial nan", ["launch", "--gpus-per-trial", "nan"],
        ("gpus-per-trial nan must be finite",)),
    Row("trials and pack", ["launch", "--trials", "1000000000", "--pack", "1000000000"],
        ("trials 1000000000 must be <= 100000",)),
    Row("pack", ["launch", "--pack", "1000000000"], ("pack 1000000000 must be <= 4096",)),
    Row("TOML lr high inf", ["launch", "--config", "c.toml"],
        ("space.lr: bounds [1e-06, inf] must be finite",),
        files={"c.toml": "[space]\nlr = {high = inf}\n"}),
    Row("TOML trials 1e9", ["launch", "--config", "c.toml"],
        ("trials 1000000000 must be <= 100000",), files={"c.toml": "trials = 1e9\n"}),
    Row("TOML momentum nan", ["launch", "--config", "c.toml"], ("space.momentum", "finite"),
        files={"c.toml": "[space]\nmomentum = {low = nan}\n"}),
    Row("epochs 0", ["launch", "--epochs", "0"], ("epochs 0 must be >= 1",)),
    Row("batch size", ["launch", "--batch-size", "100000000"],
        ("batch-size 100000000 must be <= 65536",)),
    Row("heartbeat 0", ["launch", "--heartbeat", "0"], ("heartbeat 0 must be >= 1",)),
    Row("progress inf", ["launch", "--progress-every", "inf"],
        ("progress-every inf must be finite",)),
    Row("max-concurrent negative", ["launch", "--max-concurrent", "-1"],
        ("max-concurrent -1 must be >= 0",)),
    Row("train lr nan", ["train", "--lr", "nan"], ("lr nan must be finite",)),
    Row("train lr -1", ["train", "--lr", "-1"], ("lr -1.0 must be > 0",)),
    # Within every bound, but a pack that no machine holds.
    Row("pack memory", ["launch", "--depths", "1000", "--width", "4096", "--pack", "8",
                        "--trials", "8"], ("needs at least", "GiB", "allowed: a smaller")),
    # Data that is not there: refused before the database is opened.
    Row("data dir empty", ["launch", "--data-dir", "."], ("no mnist IDX files in .",)),
    # Passwords.
    Row("password in the query string", ["best"],
        ("cannot open storage", "password=***"),
        env={"HWSEARCH_STORAGE":
             f"postgresql+psycopg://u@127.0.0.1:1/db?password={SECRET}&connect_timeout=3"}),
    Row("password on the command line", ["best", "--storage",
                                         f"postgresql+psycopg://u:{SECRET}@h/db"],
        ("--storage holds a password", "--storage-file", "PGPASSWORD")),
    Row("password on the launch command line",
        ["launch", "--storage", f"postgresql+psycopg://u@h/db?password={SECRET}"],
        ("--storage holds a password",)),
    Row("typo before a password", ["best", "--stoarge", f"postgresql+psycopg://u:{SECRET}@h/db"],
        ("unrecognized arguments: --stoarge",)),
    Row("typo before a launch password",
        ["launch", "--stoarge", f"postgresql+psycopg://u:{SECRET}@h/db"],
        ("unrecognized arguments: --stoarge",)),
    Row("storage file missing", ["status", "--storage-file", "nope"],
        ("cannot read the storage URL file nope",)),
    # Read commands on a database that does not exist.
    Row("best typo.db", ["best", "--storage", "sqlite:///typo.db"], ("no database at typo.db",)),
    Row("status typo.db", ["status", "--storage", "sqlite:///typo.db"],
        ("no database at typo.db",)),
    Row("trials typo.db", ["trials", "--study", "s", "--storage", "sqlite:///typo.db"],
        ("no database at typo.db",)),
    Row("export typo.db", ["export", "--study", "s", "--out", "m.pt2", "--storage",
                           "sqlite:///typo.db"], ("no database at typo.db",)),
    Row("report typo.db", ["report", "--out", "r", "--storage", "sqlite:///typo.db"],
        ("no database at typo.db",)),
    Row("status default database", ["status"], ("no database at highway-search.db",)),
    # Report output.
    Row("report --out is a file", ["report", "--out", "out.html"],
        ("--out out.html is an existing file",), files={"out.html": "mine"}),
]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in hwsearch_env().items() if not k.startswith("HWSEARCH_STORAGE")}
    return {**env, **extra}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input_is_one_line_exit_2_nothing_created(row: Row, tmp_path: Path) -> None:
    for name, text in row.files.items():
        (tmp_path / name).write_text(text)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    out = subprocess.run(
        [sys.executable, "-m", "hwsearch", *row.argv],
        cwd=tmp_path, env=_env(row.env), capture_output=True, text=True, timeout=120,
    )  # a hang guard: the refusal itself takes a second or two
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    for words in row.says:
        assert words in lines[0], (words, lines[0])
    assert SECRET not in out.stdout + out.stderr
    assert out.stdout == ""
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no database, lock file, output directory or study


def test_a_foreign_study_stops_the_launch_before_any_study_is_made(tmp_path: Path) -> None:
    url = foreign_study(f"sqlite:///{tmp_path / 'f.db'}", "mnist-highway-d2", trials=2)
    out = subprocess.run(
        [sys.executable, "-m", "hwsearch", "launch", "--storage", url, "--models",
         "plain,highway", "--depths", "2", "--trials", "1", "--download"],  # nothing fetched
        cwd=tmp_path, env=_env({}), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1
    assert "'mnist-highway-d2' exists but was not made by hwsearch" in out.stderr
    assert "--adopt" in out.stderr
    names = [s.study_name for s in optuna.get_all_study_summaries(storage=url)]
    assert names == ["mnist-highway-d2"]  # mnist-plain-d2, checked first, was not created
    assert len(optuna.load_study(study_name="mnist-highway-d2", storage=url).trials) == 2


def test_the_report_library_never_makes_a_database(tmp_path: Path) -> None:
    """``write_report`` called directly (not through the command line, which checks first):
    a typo'd SQLite path is a StorageError, and no file appears."""
    from hwsearch.report.write import write_report
    from hwsearch.storage import StorageError

    with pytest.raises(StorageError, match="typo.db"):
        write_report(f"sqlite:///{tmp_path / 'typo.db'}", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
