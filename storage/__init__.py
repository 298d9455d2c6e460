"""Where studies live: Optuna's schema in SQLite or PostgreSQL, plus weights and claim locks."""

from .artifacts import SQLArtifactStore
from .base import StudyStorage
from .errors import StorageError
from .sql import SQLStudyStorage, engine_kwargs, open_storage
from .url import DEFAULT_URL, DIALECTS, ENV_VAR, is_sqlite, mask_url, parse_url, resolve_url

__all__ = [
    "DEFAULT_URL",
    "DIALECTS",
    "ENV_VAR",
    "SQLArtifactStore",
    "SQLStudyStorage",
    "StorageError",
    "StudyStorage",
    "engine_kwargs",
    "is_sqlite",
    "mask_url",
    "open_storage",
    "parse_url",
    "resolve_url",
]
