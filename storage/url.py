"""Storage URLs: validation, and the masked form that is safe to show.

A URL may carry a password (``user:pw@host`` or ``?password=…``): :func:`mask_url` is the only
form ever shown or logged, and :func:`has_password` tells the interfaces which URLs must not
travel where others can read them. Where a URL comes from (a setting, a file, the
environment) is the application layer's business (``hwsearch.app.storage_url``).
"""

from __future__ import annotations

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
