"""Dropping the weights a policy no longer keeps from an existing database, and compacting it.

A database filled under ``keep_weights all`` (or by hwsearch before the policy existed) holds
every trial's weights. :func:`prune` keeps a study's ``top:N`` and drops the rest in one
transaction under the study's row lock (as a launch admits weights, so a launch running
meanwhile never sees more than N kept, nor loses its best); a dry run only reads and says what
it would free. On SQLite the freed pages stay in the file until :func:`compact` (``VACUUM``)
rewrites it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa

from .artifacts import ARTIFACTS
from .keep import KeepPolicy, Kept, drop, kept, lock_study, remove_quietly
from .url import parse_url

if TYPE_CHECKING:
    from .store import StudyStorage


class Pruned(NamedTuple):
    """What a study's prune dropped (or, in a dry run, would drop)."""

    study: str
    kept: int  # trials whose weights stay
    dropped: int  # trials whose weights go
    bytes: int  # the dropped weights' size


def _sizes(conn: sa.Connection, rows: Sequence[Kept], dirs: Sequence[str]) -> int:
    """Bytes of ``rows``' weights: in the database's table, else in a directory."""
    ids = [r.artifact_id for r in rows]
    if not ids:
        return 0
    found = dict(conn.execute(
        sa.select(ARTIFACTS.c.artifact_id, sa.func.length(ARTIFACTS.c.data))
        .where(ARTIFACTS.c.artifact_id.in_(ids))).all()) if _has_table(conn) else {}
    total = 0
    for artifact_id in ids:
        if artifact_id in found:
            total += int(found[artifact_id])
            continue
        for where in dirs:
            path = Path(where) / artifact_id
            if path.is_file():
                total += path.stat().st_size
                break
    return total


def _has_table(conn: sa.Connection) -> bool:
    return sa.inspect(conn).has_table(ARTIFACTS.name)


def prune(store: StudyStorage, study_name: str, policy: KeepPolicy,
          dry_run: bool = False) -> Pruned:
    """Keep the weights of ``study_name``'s ``policy`` best trials, drop the others' (their
    trials stay, without weights); a dry run changes nothing."""
    study_id = store.study_id(study_name)
    dirs = store.artifacts.dirs(refresh=True)

    def plan(conn: sa.Connection) -> tuple[list[Kept], list[Kept], int]:
        if not dry_run:
            lock_study(conn, study_id)
        rows = kept(conn, study_id)
        keep = rows if policy.top is None else rows[: policy.top]
        out = rows[len(keep):]
        size = _sizes(conn, out, dirs)
        if not dry_run:
            drop(conn, out)
        return keep, out, size

    if dry_run:
        stay, out, size = store.database.read("planning the prune", plan)
    else:
        stay, out, size = store.database.write("pruning weights", plan)
        for where in dirs:  # the records are gone; now the files
            from optuna.artifacts import FileSystemArtifactStore

            remove_quietly(FileSystemArtifactStore(where), [r.artifact_id for r in out])
    return Pruned(study_name, len(stay), len(out), size)


def sqlite_path(store: StudyStorage) -> Path | None:
    """The database's file, for SQLite; None for a server."""
    parsed = parse_url(store.optuna.engine.url.render_as_string(hide_password=True))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).expanduser()


def compact(store: StudyStorage) -> None:
    """SQLite: rewrite the file without its free pages (``VACUUM``), and fold the write-ahead
    log back into it, so the freed bytes leave the disk. A server reclaims space itself."""
    if sqlite_path(store) is None:
        return
    engine = store.optuna.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
