"""Whose database is it? Checked before anything is created or read.

The read commands (``status``, ``best``, ``trials``, ``report``, ``export``, ``dashboard``)
open a database that must already exist: a typo in a URL such as ``sqlite:///typo.db`` must be
an error, not a new empty database; and a read must never write, so nothing here creates a
file or a table, stamps a schema version or migrates. Optuna's own ``RDBStorage`` writes its
version rows when they are missing, so the tables are checked first, on a connection of their
own (read-only: ``database.sqlite_reader``).

A launch creates Optuna's tables, but only in an empty database or one that holds them
already: a database with other tables and no studies is someone's application database, and
adding a dozen tables there is refused unless asked for (``allow_other_tables``).
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from .database import sqlite_reader
from .errors import StorageError
from .retry import reason
from .url import sqlite_file

# What Optuna's RDBStorage needs in order to open a database without writing to it.
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})
OURS = frozenset({"hwsearch_artifacts"})  # the weights' table (artifacts.py)


def check_sqlite_file(parsed: URL, display_url: str) -> None:
    """For SQLite, the file must exist: a typo in its name would otherwise make a new one."""
    if parsed.get_backend_name() != "sqlite":
        return
    path = sqlite_file(parsed)
    if path is None:
        raise StorageError(f"{display_url} is an empty in-memory database; nothing to read")
    if not path.is_file():
        raise StorageError(f"no database at {path}; this command only reads (check `storage`)")


def table_names(url: str, parsed: URL, display_url: str) -> set[str]:
    """The tables of the database at ``url``; none for a SQLite file not there yet. Creates
    nothing and writes nothing; a database that cannot be reached is a :class:`StorageError`."""
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is None or not path.exists():
            return set()
        engine = sa.create_engine("sqlite://", creator=sqlite_reader(path),
                                  poolclass=sa.pool.NullPool)
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    except (SQLAlchemyError, sqlite3.Error) as e:
        raise StorageError(f"cannot open storage {display_url}: {reason(e)}") from None
    finally:
        engine.dispose()


def foreign(tables: set[str], display_url: str) -> StorageError | None:
    """The error for a database holding other tables and none of Optuna's studies, else None."""
    if not tables or "studies" in tables:
        return None
    others = sorted(tables - OPTUNA_TABLES - OURS)
    if not others:
        return None
    shown = ", ".join(repr(t) for t in others[:3]) + (", …" if len(others) > 3 else "")
    return StorageError(
        f"{display_url} holds {len(others)} other table(s) ({shown}) and no Optuna studies: "
        "not a study database; point `storage` at an empty database, or pass "
        "`allow_other_tables` to a launch to add the study tables beside them"
    )


def check_ours(url: str, parsed: URL, display_url: str, allow_other_tables: bool) -> set[str]:
    """Before a launch creates tables: refuse a database that holds other tables and no
    studies, unless ``allow_other_tables``. Returns the tables found."""
    tables = table_names(url, parsed, display_url)
    error = foreign(tables, display_url)
    if error is not None and not allow_other_tables:
        raise error
    return tables


def check_existing(url: str, parsed: URL, display_url: str) -> None:
    """Raise :class:`StorageError` unless ``url`` names a database holding Optuna's tables.
    Creates nothing: a missing SQLite file stays missing."""
    check_sqlite_file(parsed, display_url)
    tables = table_names(url, parsed, display_url)
    error = foreign(tables, display_url)
    if error is not None:
        raise error
    missing = sorted(OPTUNA_TABLES - tables)
    if missing:
        raise StorageError(
            f"{display_url} holds no Optuna studies (no table {missing[0]!r}); this command "
            "only reads (check `storage`)"
        )
