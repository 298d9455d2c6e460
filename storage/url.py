"""Storage URLs: validation, and the masked form that is safe to show.

A URL may carry a password (``user:pw@host`` or ``?password=…``): :func:`mask_url` is the only
form ever shown or logged, and :func:`has_password` tells the interfaces which URLs must not
travel where others can read them. Where a URL comes from (a setting, a file, the
environment) is the application layer's business (``hwsearch.app.storage_url``).
"""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import unquote

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
# Where a "file" is the kernel's, not a disk's: a database there keeps nothing (or worse).
SPECIAL_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))
KEEPING = ("allowed: a regular file on a disk (sqlite:///path.db) or a server "
           "(postgresql+psycopg://…)")


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


def sqlite_file(parsed: URL) -> Path | None:
    """The file a SQLite URL names (``uri=true`` forms read as SQLite reads them), or None for
    an in-memory database (``sqlite://``, ``:memory:``, ``file::memory:``, ``mode=memory``)."""
    database = parsed.database or ""
    if not database.startswith("file:"):
        return None if database in ("", ":memory:") else Path(database).expanduser()
    path, _, query = database[len("file:"):].partition("?")
    params = dict(parsed.query) | dict(p.partition("=")[::2] for p in query.split("&") if p)
    if path.startswith("//"):  # file://host/path: SQLite accepts only an empty or local host
        path = "/" + path[2:].partition("/")[2]
    path = unquote(path)
    if path in ("", ":memory:") or params.get("mode") == "memory":
        return None
    if str(parsed.query.get("uri", "")).lower() not in ("true", "1"):
        return Path(database).expanduser()  # without uri=true, SQLite takes the name as is
    return Path(path).expanduser()


def check_keeps(url: str) -> None:
    """A one-line :class:`StorageError` unless ``url`` names storage that outlives the
    command: not an in-memory SQLite database, and not a "file" that is a directory, a
    device, a pipe or a socket, or lives under /dev, /proc or /sys. Creates nothing."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    display = mask_url(parsed)
    path = sqlite_file(parsed)
    if path is None:
        raise StorageError(f"{display} is an in-memory database, which keeps nothing once the "
                           f"command ends; {KEEPING}")
    try:
        resolved = path.resolve()
        mode = resolved.stat().st_mode if resolved.exists() else None
    except (OSError, RuntimeError) as e:  # a symlink loop, a path too long, no permission
        raise StorageError(f"cannot use {path} for {display}: {e}; {KEEPING}") from None
    root = next((r for r in SPECIAL_ROOTS if resolved.is_relative_to(r)), None)
    if root is not None:
        raise StorageError(f"{path} for {display} is under {root}, where nothing is kept on a "
                           f"disk; {KEEPING}")
    if mode is not None and not stat.S_ISREG(mode):
        raise StorageError(f"{path} for {display} is a {_kind(mode)}, not a database file; "
                           f"{KEEPING}")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "named pipe"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"
