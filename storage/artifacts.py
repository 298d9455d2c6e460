"""An Optuna artifact store kept in the study database itself.

Clusters then need nothing shared but the database: no NFS, no bucket. Weights of a 50-layer
net are about 1 MB, so a 320-trial reproduction adds a few hundred MB to the database.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import sqlalchemy as sa
from optuna.artifacts.exceptions import ArtifactNotFound

from .retry import Retry

METADATA = sa.MetaData()
ARTIFACTS = sa.Table(
    "hwsearch_artifacts",
    METADATA,
    sa.Column("artifact_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


class SQLArtifactStore:
    """Implements optuna's ``ArtifactStore`` protocol on one table beside Optuna's own."""

    def __init__(
        self, engine: sa.Engine, retry: Retry | None = None, *, create: bool = True
    ) -> None:
        self._engine = engine
        self._retry = retry
        if create:  # a reader never creates the table; reading a missing one is "not found"
            METADATA.create_all(engine)

    def open_reader(self, artifact_id: str) -> BinaryIO:
        if self._retry is None:
            return self._open_reader(artifact_id)
        return self._retry("reading weights", lambda: self._open_reader(artifact_id))

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        data = content_body.read()
        if self._retry is None:
            self._write(artifact_id, data)
        else:
            self._retry("storing weights", lambda: self._write(artifact_id, data))

    def _open_reader(self, artifact_id: str) -> BinaryIO:
        with self._engine.connect() as conn:
            data = conn.execute(
                sa.select(ARTIFACTS.c.data).where(ARTIFACTS.c.artifact_id == artifact_id)
            ).scalar_one_or_none()
        if data is None:
            raise ArtifactNotFound(f"artifact {artifact_id} not found")
        return io.BytesIO(data)

    def _write(self, artifact_id: str, data: bytes) -> None:
        with self._engine.begin() as conn:  # idempotent: a retry rewrites the same row
            conn.execute(ARTIFACTS.delete().where(ARTIFACTS.c.artifact_id == artifact_id))
            conn.execute(ARTIFACTS.insert().values(artifact_id=artifact_id, data=data))

    def remove(self, artifact_id: str) -> None:
        with self._engine.begin() as conn:
            deleted = conn.execute(
                ARTIFACTS.delete().where(ARTIFACTS.c.artifact_id == artifact_id)
            ).rowcount
        if not deleted:
            raise ArtifactNotFound(f"artifact {artifact_id} not found")
