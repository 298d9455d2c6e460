"""An Optuna artifact store kept in the study database itself.

Clusters then need nothing shared but the database: no NFS, no bucket. Weights of a 50-layer
net are about 1 MB, so a 320-trial reproduction adds a few hundred MB to the database.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import sqlalchemy as sa
from optuna.artifacts.exceptions import ArtifactNotFound

from .database import Database

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
