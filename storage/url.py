"""Storage URLs: where the URL comes from, validation, and the masked form that is safe to show.

A URL may carry a password (``user:pw@host`` or ``?password=…``). On a command line it is
visible to every user of the machine (``ps``, ``/proc/PID/cmdline``) and stays in shell history
and in Ray's job table, so it is refused there: it comes from a file (``--storage-file``,
``$HWSEARCH_STORAGE_FILE``), the environment (``$HWSEARCH_STORAGE``), or libpq itself
(``~/.pgpass``, ``$PGPASSWORD``) with a password-less URL.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import StorageError

DEFAULT_URL = "sqlite:///highway-search.db"
ENV_VAR = "HWSEARCH_STORAGE"
FILE_ENV_VAR = "HWSEARCH_STORAGE_FILE"
DIALECTS = ("sqlite", "postgresql")
# Query parameters libpq (and so psycopg) reads as passwords.
SECRET_PARAMS = ("password", "sslpassword")
MASK = "***"
ALTERNATIVES = (
    f"put the URL in a file and pass --storage-file FILE (or set {FILE_ENV_VAR}), set "
    f"{ENV_VAR}, or give a URL without a password and let libpq read ~/.pgpass or PGPASSWORD"
)


def resolve_url(url: str | None, url_file: str | None = None) -> str:
    """The flag, else the flag's file, else ``$HWSEARCH_STORAGE``, else the file named by
    ``$HWSEARCH_STORAGE_FILE``, else a SQLite file in the working directory."""
    if url and url_file:
        raise StorageError("give --storage or --storage-file, not both")
    if url:
        return url
    if url_file:
        return read_url_file(url_file, "--storage-file")
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    if os.environ.get(FILE_ENV_VAR):
        return read_url_file(os.environ[FILE_ENV_VAR], FILE_ENV_VAR)
    return DEFAULT_URL


def read_url_file(path: str, source: str) -> str:
    """The URL in ``path``: its first non-blank line. A file others may read is used, with a
    warning (as libpq does for ``.pgpass``, but libpq ignores such a file)."""
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
        print(
            f"hwsearch: warning: {path} holds a password and others may read it; "
            f"chmod 600 {path}",
            file=sys.stderr,
        )
    return url


def refuse_password_on_command_line(url: str | None) -> None:
    """A ``--storage`` flag holding a password is an error that points to the alternatives;
    the message never repeats the URL."""
    if url and has_password(url):
        raise StorageError(
            f"--storage holds a password, which any user can read on the command line; "
            f"{ALTERNATIVES}"
        )


def has_password(url: str | URL) -> bool:
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return isinstance(url, str) and ("password" in url.lower() or ":" in _netloc(url))
    return bool(parsed.password) or any(k.lower() in SECRET_PARAMS for k in parsed.query)


def _netloc(url: str) -> str:
    """The user:password@host part of an unparseable URL, for a conservative guess."""
    rest = url.split("://", 1)[-1]
    return rest.split("@", 1)[0] if "@" in rest else ""


def parse_url(url: str) -> URL:
    """Parse and check the dialect; errors never echo the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            "malformed storage URL; expected e.g. sqlite:///highway-search.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from None
    if parsed.get_backend_name() not in DIALECTS:
        raise StorageError(
            f"unsupported storage dialect {parsed.get_backend_name()!r} in "
            f"{mask_url(url)}; allowed: {', '.join(DIALECTS)}"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with every password (``user:pw@``, ``?password=``, ``?sslpassword=``) replaced
    by ``***``: the only form we ever print or log."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<malformed URL>"
    secret = {k: MASK for k in parsed.query if k.lower() in SECRET_PARAMS}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)
