"""Opening for reading (``create=False``): a missing or foreign database is a one-line error,
and opening writes nothing: no file, no lock file, no table, no schema stamp."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from hwsearch.storage import StorageError, open_storage
from hwtest import PG_PASSWORD, pg_scratch, pg_url


def test_a_missing_sqlite_file_stays_missing(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no database at .*typo.db; this command only reads"):
        open_storage(f"sqlite:///{tmp_path / 'typo.db'}", create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_optuna_tables_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (x TEXT)")
    engine.dispose()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="other table.*no Optuna studies"):
        open_storage(f"sqlite:///{path}", create=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_reading_an_optuna_database_writes_nothing(tmp_path: Path) -> None:
    """A database made by Optuna alone (no hwsearch table): read as is, nothing added."""
    path = tmp_path / "optuna.db"
    url = f"sqlite:///{path}"
    optuna.create_study(study_name="s", storage=url)
    before = path.read_bytes()
    store = open_storage(url, create=False)
    try:
        assert store.study_names() == ["s"]
    finally:
        store.close()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optuna.db"]  # no .lock, no -wal


def test_an_empty_postgresql_database_gets_no_tables(pg_database: str) -> None:
    with pg_scratch(f"{pg_database}_empty") as empty:
        with pytest.raises(StorageError) as e:
            open_storage(pg_url(empty), create=False)
        assert "holds no Optuna studies" in str(e.value)
        assert PG_PASSWORD not in str(e.value)
        engine = sa.create_engine(pg_url(empty), poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
        engine.dispose()


def test_an_unreachable_server_names_no_password() -> None:
    with pytest.raises(StorageError) as e:
        open_storage(f"postgresql+psycopg://u:{PG_PASSWORD}@127.0.0.1:1/db?connect_timeout=2",
                     create=False)
    assert "cannot open storage" in str(e.value) and PG_PASSWORD not in str(e.value)


def test_a_reader_cannot_write_on_postgresql(pg_database: str, prefix: str) -> None:
    """Read commands' sessions are read-only on the server itself, whatever the code does."""
    writer = open_storage(pg_url(pg_database))
    optuna.create_study(study_name=f"{prefix}r", storage=writer.optuna)
    writer.close()
    reader = open_storage(pg_url(pg_database), create=False)
    try:
        assert f"{prefix}r" in reader.study_names()
        with pytest.raises(optuna.exceptions.StorageInternalError) as e:
            optuna.create_study(study_name=f"{prefix}w", storage=reader.optuna)
        assert "read-only transaction" in str(e.value.__cause__)  # the server said no
    finally:
        reader.close()
    assert f"{prefix}w" not in [s.study_name for s in
                                optuna.get_all_study_summaries(storage=pg_url(pg_database))]
