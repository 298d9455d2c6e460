"""Storage URLs: defaults, validation, and the masked form that is safe to show."""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import StorageError

DEFAULT_URL = "sqlite:///highway-search.db"
ENV_VAR = "HWSEARCH_STORAGE"
DIALECTS = ("sqlite", "postgresql")


def resolve_url(url: str | None) -> str:
    """The flag, else ``$HWSEARCH_STORAGE``, else a SQLite file in the working directory."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def parse_url(url: str) -> URL:
    """Parse and check the dialect; errors never echo the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            "malformed storage URL; expected e.g. sqlite:///highway-search.db or "
            "postgresql+psycopg://user:password@host:5432/db"
        ) from None
    if parsed.get_backend_name() not in DIALECTS:
        raise StorageError(
            f"unsupported storage dialect {parsed.get_backend_name()!r} in "
            f"{mask_url(url)}; allowed: {', '.join(DIALECTS)}"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``: the only form we ever print or log."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<malformed URL>"
    return parsed.render_as_string(hide_password=True)


