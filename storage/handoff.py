"""A storage handed to another process travels without its password.

multiprocessing, joblib and Ray pickle what a user passes them; Optuna's RDBStorage pickles its
URL, and with it a password that would then sit in a queue, a file or Ray's object store. So
the retrying storage pickles its URL with every password taken out, and the side that
unpickles it reads the password from its own environment: ``$HWSEARCH_STORAGE``, or the file
``$HWSEARCH_STORAGE_FILE`` names, when it holds a URL to the same user, server and database;
else libpq's own sources (``PGPASSWORD``, ``~/.pgpass``) apply, as for any URL without one.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .url import ENV_VAR, FILE_ENV_VAR, SECRET_PARAMS


def without_password(url: str) -> str:
    """``url`` with no password in it (``user:pw@``, ``?password=``, ``?sslpassword=``)."""
    parsed = make_url(url)
    secret = [k for k in parsed.query if k.lower() in SECRET_PARAMS]
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port,
                      parsed.database, parsed.query)  # URL.set() keeps what is given as None
    return bare.difference_update_query(secret).render_as_string(hide_password=False)


def with_password_from_env(url: str) -> str:
    """``url`` with the password of this process's configured URL for the same user, server
    and database; ``url`` itself when there is none."""
    parsed = make_url(url)
    for candidate in _configured_urls():
        if _same_place(parsed, candidate):
            secret = {k: v for k, v in candidate.query.items() if k.lower() in SECRET_PARAMS}
            return parsed.set(password=candidate.password).update_query_dict(
                secret).render_as_string(hide_password=False)
    return url


def _configured_urls() -> list[URL]:
    texts = [os.environ.get(ENV_VAR, "")]
    if os.environ.get(FILE_ENV_VAR):
        try:
            lines = Path(os.environ[FILE_ENV_VAR]).expanduser().read_text().splitlines()
            texts.append(next((line.strip() for line in lines if line.strip()), ""))
        except (OSError, UnicodeDecodeError):
            pass  # the other side has no file: libpq's sources remain
    urls = []
    for text in texts:
        try:
            urls.append(make_url(text)) if text else None
        except ArgumentError:
            continue
    return urls


def _same_place(a: URL, b: URL) -> bool:
    return (a.get_backend_name(), a.username, a.host, a.port, a.database) == (
        b.get_backend_name(), b.username, b.host, b.port, b.database)
