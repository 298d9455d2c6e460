"""Where studies live: Optuna's schema in SQLite or PostgreSQL, plus weights and claim locks.

``records`` is the trial record (the keys and the functions that write and read a stored
trial); ``weights`` the trained weights; ``schema`` the few Optuna tables queried directly.
"""

from . import records
from .artifacts import SQLArtifactStore
from .base import Counts, StudyStorage
from .errors import StorageError
from .sql import SQLStudyStorage, engine_kwargs, open_storage
from .url import DEFAULT_URL, DIALECTS, ENV_VAR, mask_url, parse_url, resolve_url

__all__ = [
    "DEFAULT_URL",
    "DIALECTS",
    "ENV_VAR",
    "Counts",
    "SQLArtifactStore",
    "SQLStudyStorage",
    "StorageError",
    "StudyStorage",
    "engine_kwargs",
    "mask_url",
    "open_storage",
    "parse_url",
    "records",
    "resolve_url",
]
