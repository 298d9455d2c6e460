"""Opening a database that must already exist: what the read commands (``status``, ``best``,
``trials``, ``report``, ``export``, ``dashboard``) do.

A typo in a URL such as ``sqlite:///typo.db`` must be an error, not a new empty database; and a
read must never write, so nothing here creates a table, stamps a schema version or migrates.
Optuna's own ``RDBStorage`` writes its version rows when they are missing, so the tables are
checked first, on a connection of their own.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .errors import StorageError

# What Optuna's RDBStorage needs in order to open a database without writing to it.
OPTUNA_TABLES = frozenset({"studies", "trials", "version_info", "alembic_version"})


def check_sqlite_file(parsed: URL, display_url: str) -> None:
    """For SQLite, the file must exist: a typo in its name would otherwise make a new one."""
    if parsed.get_backend_name() != "sqlite":
        return
    path = parsed.database
    if not path or path == ":memory:":
        raise StorageError(f"{display_url} is an empty in-memory database; nothing to read")
    if not Path(path).expanduser().is_file():
        raise StorageError(f"no database at {path}; this command only reads (check `storage`)")


def check_existing(url: str, parsed: URL, display_url: str) -> None:
    """Raise :class:`StorageError` unless ``url`` names a database holding Optuna's tables.
    Creates nothing: a missing SQLite file stays missing."""
    check_sqlite_file(parsed, display_url)
    if parsed.get_backend_name() == "sqlite":
        path = str(parsed.database)
        # mode=ro: SQLite opens the file without creating it, even if it vanishes meanwhile.
        engine = sa.create_engine(
            f"sqlite:///file:{Path(path).expanduser()}?mode=ro&uri=true",
            poolclass=sa.pool.NullPool,
        )
    else:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    missing = sorted(OPTUNA_TABLES - tables)
    if missing:
        raise StorageError(
            f"{display_url} holds no Optuna studies (no table {missing[0]!r}); this command "
            "only reads (check `storage`)"
        )
