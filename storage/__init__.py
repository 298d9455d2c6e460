"""Where studies live: Optuna's schema in SQLite or PostgreSQL, plus weights and claims.

:class:`StudyStorage` (``store.py``) opens a database and puts the parts together: the claim on
a study (``claims.py``: a lock file for SQLite, a queued advisory lock for PostgreSQL), the read
side (``queries.py``), the write side (``trials.py``) and the weights (``artifacts.py``,
``weights.py``; which trials keep them: ``keep.py``, ``prune.py``). ``records`` is the trial
record (the keys and the functions that write and read a stored trial); ``schema`` the few
Optuna tables queried directly.
"""

from . import records
from .artifacts import SQLArtifactStore
from .database import engine_kwargs
from .errors import StorageError
from .records import Counts
from .store import StudyStorage, open_storage
from .url import DEFAULT_URL, DIALECTS, ENV_VAR, mask_url, parse_url

__all__ = [
    "DEFAULT_URL",
    "DIALECTS",
    "ENV_VAR",
    "Counts",
    "SQLArtifactStore",
    "StorageError",
    "StudyStorage",
    "engine_kwargs",
    "mask_url",
    "open_storage",
    "parse_url",
    "records",
]
