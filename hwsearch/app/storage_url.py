"""Where the database URL comes from: the ``storage`` setting, else the file the
``storage_file`` setting names, else ``$HWSEARCH_STORAGE``, else the file named by
``$HWSEARCH_STORAGE_FILE``, else a SQLite file in the working directory.

A file lets a password stay off the command line; one that others may read is used with a
warning (as libpq does for ``.pgpass``, but libpq ignores such a file).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from hwsearch.storage import StorageError
from hwsearch.storage.url import DEFAULT_URL, ENV_VAR, FILE_ENV_VAR, check_keeps, has_password


def resolve_storage(storage: str | None = None, storage_file: str | None = None) -> str:
    """The URL the settings ``storage`` and ``storage_file`` (or the environment) point to,
    checked to name storage that keeps a study (``check_keeps``: not in memory, not a device)."""
    url = _find_url(storage, storage_file)
    check_keeps(url)
    return url


def _find_url(storage: str | None, storage_file: str | None) -> str:
    if storage and storage_file:
        raise StorageError("give `storage` or `storage_file`, not both")
    if storage:
        return storage
    if storage_file:
        return read_url_file(storage_file, "`storage_file`")
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    if os.environ.get(FILE_ENV_VAR):
        return read_url_file(os.environ[FILE_ENV_VAR], FILE_ENV_VAR)
    return DEFAULT_URL


def read_url_file(path: str, source: str) -> str:
    """The URL in ``path`` (named by ``source``): its first non-blank line."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
        mode = file.stat().st_mode
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise StorageError(
            f"cannot read the storage URL file {path} ({source}): {reason}"
        ) from None
    url = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not url:
        raise StorageError(f"the storage URL file {path} ({source}) is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and has_password(url):
        print(f"hwsearch: warning: {path} holds a password and others may read it; "
              f"chmod 600 {path}", file=sys.stderr)
    return url
