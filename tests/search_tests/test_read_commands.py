"""The read commands only read, and start fast: ``status``, ``best`` and ``trials`` import
neither torch nor Ray; ``report`` and ``export`` (which load weights) never import Ray."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hwsearch.usage import redact
from hwtest import REPO, foreign_study, hwsearch_env

PROBE = textwrap.dedent(
    """
    import json, sys
    from hwsearch.cli import main
    try:
        code = main(sys.argv[2:])
    except SystemExit as e:
        code = e.code
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "ray"})
    with open(sys.argv[1], "w") as f:
        json.dump({"code": code, "heavy": heavy}, f)
    """
)


def _probe(tmp_path: Path, *argv: str) -> dict:
    result = tmp_path / "probe.json"
    subprocess.run([sys.executable, "-c", PROBE, str(result), *argv], cwd=REPO,
                   env=hwsearch_env(), capture_output=True, timeout=120, check=False)
    return json.loads(result.read_text())


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "small.db"
    return foreign_study(f"sqlite:///{path}", "mnist-highway-d10", trials=3)


@pytest.mark.parametrize(
    "argv",
    [["status"], ["best"], ["trials", "--study", "mnist-highway-d10", "--format", "csv"]],
    ids=["status", "best", "trials"],
)
def test_queries_import_neither_torch_nor_ray(small_db: str, tmp_path: Path, argv: list) -> None:
    probe = _probe(tmp_path, *argv, "--storage", small_db)
    assert probe == {"code": 0, "heavy": []}


@pytest.mark.parametrize(
    "argv",
    [["launch", "--width", "10000000"], ["launch", "--trials", "1000000000"],
     ["train", "--lr", "nan"], ["train", "--model", "mnist-highway-10", "--width", "99999"]],
    ids=["launch-width", "launch-trials", "train-lr", "train-conv-width"],
)
def test_refusals_import_neither_torch_nor_ray(tmp_path: Path, argv: list) -> None:
    """Settings are checked on torch-free definitions, before the launcher or trainer loads."""
    probe = _probe(tmp_path, *argv)
    assert probe == {"code": 2, "heavy": []}


def test_report_and_export_never_import_ray(small_db: str, tmp_path: Path) -> None:
    report = _probe(tmp_path, "report", "--storage", small_db, "--out", str(tmp_path / "r"),
                    "--skip-data-figures")
    assert report["code"] == 0 and "ray" not in report["heavy"]
    export = _probe(tmp_path, "export", "--storage", small_db, "--study", "mnist-highway-d10",
                    "--out", str(tmp_path / "m.pt2"))
    assert export["code"] == 2 and "ray" not in export["heavy"]  # no weights stored: refused


@pytest.mark.parametrize(
    "message, argv, shown",
    [
        ("unrecognized arguments: --stoarge postgresql+psycopg://u:pw@h/db",
         ["best", "--stoarge", "postgresql+psycopg://u:pw@h/db"],
         "unrecognized arguments: --stoarge (values not shown)"),
        ("unrecognized arguments: --stoarge=postgresql+psycopg://u:pw@h/db",
         ["best", "--stoarge=postgresql+psycopg://u:pw@h/db"],
         "unrecognized arguments: --stoarge (values not shown)"),
        ("argument --port: invalid int value: 'u:pw@h'", ["dashboard", "--port", "u:pw@h"],
         "argument --port: invalid int value: '…'"),
        ("argument --format: invalid choice: 'u:pw@h' (choose from 'table', 'json')",
         ["best", "--format", "u:pw@h"],
         "argument --format: invalid choice: '…' (choose from 'table', 'json')"),
        ("ambiguous option: --st=u:pw@h could match --storage, --study",
         ["best", "--st=u:pw@h"], "ambiguous option: --st=… could match --storage, --study"),
        # A plain word cannot hold a URL: it is named, so the user sees what was wrong.
        ("argument --format: invalid choice: 'csvv' (choose from 'table', 'json')",
         ["best", "--format", "csvv"],
         "argument --format: invalid choice: 'csvv' (choose from 'table', 'json')"),
        ("argument --port: invalid int value: 'my-password'", ["dashboard", "--port",
                                                               "my-password"],
         "argument --port: invalid int value: '…'"),
        ("argument --port: invalid int value: '" + "x" * 41 + "'",
         ["dashboard", "--port", "x" * 41], "argument --port: invalid int value: '…'"),
    ],
)
def test_usage_errors_hide_values(message: str, argv: list, shown: str) -> None:
    assert redact(message, argv) == shown


@pytest.mark.parametrize("typo", [["--stoarge", "postgresql+psycopg://u:pw-x9@h/db"],
                                  ["--stoarge=postgresql+psycopg://u:pw-x9@h/db"],
                                  ["--st=postgresql+psycopg://u:pw-x9@h/db"],
                                  ["--format", "postgresql+psycopg://u:pw-x9@h/db"]])
def test_a_typo_never_echoes_the_password(typo: list, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "hwsearch", "best", *typo], cwd=tmp_path,
                         env=hwsearch_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "pw-x9" not in out.stderr + out.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_url_from_a_file(small_db: str, tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text(small_db + "\n")
    url_file.chmod(0o600)
    env = {k: v for k, v in hwsearch_env().items() if not k.startswith("HWSEARCH_STORAGE")}
    for argv, extra in ((["--storage-file", str(url_file)], {}),
                        ([], {"HWSEARCH_STORAGE_FILE": str(url_file)})):
        out = subprocess.run([sys.executable, "-m", "hwsearch", "status", *argv], cwd=tmp_path,
                             env={**env, **extra}, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "mnist-highway-d10" in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["url"]  # no default database made


@pytest.mark.parametrize("argv", [
    ["status"], ["best"], ["trials", "--study", "s"], ["report", "--out", "r"],
    ["export", "--study", "s", "--out", "m.pt2"]], ids=lambda a: a[0])
def test_an_older_schema_is_reported_not_migrated(argv: list, tmp_path: Path) -> None:
    """A database whose schema an older Optuna made (its alembic revision set back): each read
    command says so in one line, exit 2, and leaves every byte of it as it was."""
    import sqlite3

    db = tmp_path / "old.db"
    foreign_study(f"sqlite:///{db}", "s", trials=1)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'v3.0.0.a'")
    before = db.read_bytes()
    out = subprocess.run([sys.executable, "-m", "hwsearch", *argv, "--storage", f"sqlite:///{db}"],
                         cwd=tmp_path, env=hwsearch_env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "optuna storage upgrade" in out.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]  # no output, no lock file
