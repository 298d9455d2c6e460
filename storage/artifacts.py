"""Where trained weights are: an Optuna artifact store kept in the study database itself, or
a directory a study records (Optuna's file-system store), read through one store.

The database's own store means a cluster needs nothing shared but the database: no NFS, no
bucket. A study launched with an artifact directory (``artifact_dir``, its user attribute)
keeps its weights there instead, e.g. on a volume every launcher mounts, so a PostgreSQL
database stays small. Weights of a 50-layer net are about 1 MB; which trials keep them is
``keep.py``'s.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import BinaryIO, Protocol

import sqlalchemy as sa
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound

from . import schema as s
from .database import Database

ARTIFACT_DIR = "artifact_dir"  # study user attribute: the directory of its weights files
METADATA = sa.MetaData()
ARTIFACTS = sa.Table(
    "hwsearch_artifacts",
    METADATA,
    sa.Column("artifact_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


class SQLArtifactStore:
    """Implements optuna's ``ArtifactStore`` protocol on one table beside Optuna's own."""

    def __init__(self, db: Database, *, create: bool = True) -> None:
        self._db = db
        if create:  # a reader never creates the table; reading a missing one is "not found"
            METADATA.create_all(db.engine)

    def open_reader(self, artifact_id: str) -> BinaryIO:
        data = self._db.read("reading weights", lambda conn: conn.execute(
            sa.select(ARTIFACTS.c.data).where(ARTIFACTS.c.artifact_id == artifact_id)
        ).scalar_one_or_none())
        if data is None:
            raise ArtifactNotFound(f"artifact {artifact_id} not found")
        return io.BytesIO(data)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        data = content_body.read()

        def write(conn: sa.Connection) -> None:  # idempotent: a retry rewrites the same row
            conn.execute(ARTIFACTS.delete().where(ARTIFACTS.c.artifact_id == artifact_id))
            conn.execute(ARTIFACTS.insert().values(artifact_id=artifact_id, data=data))

        self._db.write("storing weights", write)

    def remove(self, artifact_id: str) -> None:
        deleted = self._db.write("removing weights", lambda conn: conn.execute(
            ARTIFACTS.delete().where(ARTIFACTS.c.artifact_id == artifact_id)).rowcount)
        if not deleted:
            raise ArtifactNotFound(f"artifact {artifact_id} not found")


class ArtifactStore(Protocol):
    """Optuna's artifact-store protocol: what ``upload_artifact`` and the dashboard use."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


class Artifacts:
    """Every artifact of the database, wherever it is: its own table, else the directories
    its studies record (read once). What readers (export, the report, the dashboard) open;
    a write goes to the database's table."""

    def __init__(self, database: SQLArtifactStore, db: Database) -> None:
        self.database, self._db = database, db
        self._dirs: list[str] | None = None

    def dirs(self, refresh: bool = False) -> list[str]:
        """The artifact directories the studies record (read again with ``refresh``)."""
        if self._dirs is None or refresh:
            a = s.STUDY_USER_ATTRIBUTES
            rows = self._db.read("reading artifact directories", lambda conn: conn.execute(
                sa.select(a.c.value_json).where(a.c.key == ARTIFACT_DIR).distinct()
            ).scalars().all())
            self._dirs = sorted({json.loads(r) for r in rows})
        return self._dirs

    def open_reader(self, artifact_id: str) -> BinaryIO:
        try:
            return self.database.open_reader(artifact_id)
        except ArtifactNotFound:
            pass
        missing = []
        # refresh: a study may have recorded a directory since (a long-lived reader)
        for where in self.dirs(refresh=True):
            if not Path(where).is_dir():
                missing.append(where)
                continue
            try:
                return FileSystemArtifactStore(where).open_reader(artifact_id)
            except ArtifactNotFound:
                continue
        if missing:
            raise ArtifactNotFound(
                f"weights {artifact_id} are not in the database, and the artifact directory "
                f"{', '.join(missing)} the studies record is missing here; mount it there")
        raise ArtifactNotFound(f"artifact {artifact_id} not found")

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.database.write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        try:
            self.database.remove(artifact_id)
            return
        except ArtifactNotFound:
            pass
        for where in self.dirs():
            try:
                FileSystemArtifactStore(where).remove(artifact_id)
                return
            except ArtifactNotFound:
                continue
        raise ArtifactNotFound(f"artifact {artifact_id} not found")
