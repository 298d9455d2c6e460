"""A pytest plugin that points Optuna's own storage tests at hwsearch's retrying storage.

Optuna's ``tests/storages_tests`` get their storages from
``optuna.testing.storages.StorageSupplier`` by mode name (``STORAGE_MODES``). This plugin
replaces the modes with ``hwsearch_sqlite`` and ``hwsearch_postgresql``: a
:class:`~hwsearch.storage.rdb.RetryingRDBStorage` on a new SQLite file, or on a new database
of the shared PostgreSQL server (dropped after). Run by ``scripts/optuna-storage-suite``.
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import optuna.testing.storages as supplied

from hwsearch.storage.rdb import RetryingRDBStorage
from hwsearch.storage.retry import Retry
from hwsearch.storage.url import mask_url
from hwtest import pg_scratch, pg_url

MODES = ["hwsearch_sqlite", "hwsearch_postgresql"]
_enter, _exit = supplied.StorageSupplier.__enter__, supplied.StorageSupplier.__exit__


def _our_enter(self: Any) -> Any:
    if self.storage_specifier not in MODES:
        return _enter(self)
    self._hw = ExitStack()
    if self.storage_specifier == "hwsearch_sqlite":
        directory = self._hw.enter_context(tempfile.TemporaryDirectory())
        url = f"sqlite:///{Path(directory) / 'optuna.db'}"
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": supplied.SQLITE3_TIMEOUT}}}
    else:
        url = pg_url(self._hw.enter_context(pg_scratch(f"hwoptuna_{uuid.uuid4().hex[:10]}")))
        kwargs = {"engine_kwargs": {"pool_pre_ping": True}}
    self.storage = RetryingRDBStorage(url, Retry(mask_url(url)), **kwargs, **self.extra_args)
    return self.storage


def _our_exit(self: Any, *exc: Any) -> None:
    if self.storage_specifier not in MODES:
        return _exit(self, *exc)
    self.storage.remove_session()
    self.storage.engine.dispose()
    self._hw.close()
    return None


def pytest_configure(config: Any) -> None:
    supplied.STORAGE_MODES[:] = MODES  # the lists the test modules imported, changed in place
    supplied.STORAGE_MODES_HEARTBEAT[:] = MODES
    supplied.StorageSupplier.__enter__ = _our_enter
    supplied.StorageSupplier.__exit__ = _our_exit
