"""Storage URLs: every password is masked, the URL may come from a file, a password on the
command line is refused, and libpq's own password sources work with a password-less URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwsearch.app.storage_url import resolve_storage
from hwsearch.cli import refuse_password_on_command_line
from hwsearch.storage import StorageError, open_storage
from hwsearch.storage.url import DEFAULT_URL, has_password, mask_url
from hwtest import PG_PASSWORD


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql+psycopg://u:s3cret@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgresql+psycopg://u@h/db?password=s3cret", "postgresql+psycopg://u@h/db?password=***"),
        ("postgresql+psycopg://u@h/db?sslpassword=s3cret&sslmode=require",
         "postgresql+psycopg://u@h/db?sslmode=require&sslpassword=***"),
        ("postgresql+psycopg://u@h/db?PASSWORD=s3cret", "postgresql+psycopg://u@h/db?PASSWORD=***"),
        ("sqlite:///a.db", "sqlite:///a.db"),
    ],
)
def test_every_password_is_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert "s3cret" not in mask_url(url)
    assert has_password(url) == ("s3cret" in url)


def test_a_password_on_the_command_line_is_refused_with_the_alternatives() -> None:
    for url in ("postgresql+psycopg://u:s3cret@h/db", "postgresql+psycopg://u@h/db?password=s3cret"):
        with pytest.raises(StorageError) as e:
            refuse_password_on_command_line(url)
        message = str(e.value)
        assert "s3cret" not in message
        for pointer in ("--storage-file", "HWSEARCH_STORAGE_FILE", ".pgpass", "PGPASSWORD"):
            assert pointer in message
    refuse_password_on_command_line("postgresql+psycopg://u@h/db")  # no password: fine
    refuse_password_on_command_line(None)


def test_where_the_url_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWSEARCH_STORAGE", raising=False)
    monkeypatch.delenv("HWSEARCH_STORAGE_FILE", raising=False)
    file = tmp_path / "url"
    file.write_text("\n  sqlite:///from-file.db  \n")
    file.chmod(0o600)
    assert resolve_storage(None) == DEFAULT_URL
    assert resolve_storage(None, str(file)) == "sqlite:///from-file.db"
    monkeypatch.setenv("HWSEARCH_STORAGE_FILE", str(file))
    assert resolve_storage(None) == "sqlite:///from-file.db"
    monkeypatch.setenv("HWSEARCH_STORAGE", "sqlite:///from-env.db")
    assert resolve_storage(None) == "sqlite:///from-env.db"  # the variable before the file's
    assert resolve_storage("sqlite:///flag.db") == "sqlite:///flag.db"  # flags first
    assert resolve_storage(None, str(file)) == "sqlite:///from-file.db"
    with pytest.raises(StorageError, match="not both"):
        resolve_storage("sqlite:///flag.db", str(file))
    with pytest.raises(StorageError, match="cannot read the storage URL file"):
        resolve_storage(None, str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(StorageError, match="is empty"):
        resolve_storage(None, str(tmp_path / "empty"))


def test_a_url_file_others_can_read_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "url"
    file.write_text("postgresql+psycopg://u:s3cret@h/db\n")
    file.chmod(0o644)
    assert resolve_storage(None, str(file)) == "postgresql+psycopg://u:s3cret@h/db"
    err = capsys.readouterr().err
    assert "chmod 600" in err and "s3cret" not in err
    file.chmod(0o600)
    resolve_storage(None, str(file))
    assert capsys.readouterr().err == ""


def _password_used(url: str) -> str | None:
    """The password libpq used for a connection (PQpass): the URL's, PGPASSWORD or .pgpass."""
    store = open_storage(url)
    try:
        with store.optuna.engine.connect() as conn:
            return conn.connection.driver_connection.info.password  # type: ignore[union-attr]
    finally:
        store.close()


def test_libpq_reads_pgpassword_and_pgpass(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test server trusts every local connection, so what is checked is that libpq picked
    the password up for a URL without one (a server asking for it would get it)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}"
    assert not has_password(url)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:5432:{pg_database}:postgres:{PG_PASSWORD}-file\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert _password_used(url) == f"{PG_PASSWORD}-file"
    monkeypatch.setenv("PGPASSWORD", f"{PG_PASSWORD}-env")
    assert _password_used(url) == f"{PG_PASSWORD}-env"  # libpq: the variable before the file
    store = open_storage(url)
    assert os.environ["PGPASSWORD"] not in store.display_url
    store.close()
