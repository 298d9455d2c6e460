"""A PostgreSQL database of a benchmark run's own, made on the server and dropped afterwards
(benchmarks/scale.py and benchmarks/load.py), so a run never touches a database it did not make."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN = os.environ.get("HWSEARCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def own_database(admin: str, name: str) -> Iterator[str]:
    """``CREATE DATABASE name`` on the server of ``admin``; yields its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
