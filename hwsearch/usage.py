"""Usage errors that never repeat a value that may be a secret.

argparse quotes the values it rejects and lists unrecognised arguments whole, so a typo such as
``--stoarge postgresql+psycopg://u:pw@h/db`` would print the password. Flag names are kept (they
say what went wrong). Unrecognised arguments are named by their flags alone; a value rejected
by one of our flags (``--dataset imagenet``, ``--depth ten``) is repeated only when it looks
like a plain word: anything with ``:``, ``@``, ``/``, ``=``, ``%`` or a space, or longer than
40 characters, is shown as ``…``, since it may be a URL with a password in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

HIDDEN = "…"
UNRECOGNIZED = "unrecognized arguments: "
PLAIN = re.compile(r"^[\w.+,-]{1,40}$")


def is_plain(value: str) -> bool:
    """A value that cannot carry a URL or a credential pair, so it may be shown."""
    return bool(PLAIN.match(value)) and "password" not in value.lower()


def redact(message: str, argv: Sequence[str]) -> str:
    """``message`` with every command-line value that may be a secret hidden."""
    if message.startswith(UNRECOGNIZED):
        names = [t.split("=", 1)[0] for t in message[len(UNRECOGNIZED):].split()
                 if t.startswith("-")]
        listed = " ".join(names) if names else HIDDEN
        return f"{UNRECOGNIZED}{listed} (values not shown)"
    for token in sorted(set(argv), key=len, reverse=True):
        name, eq, value = token.partition("=") if token.startswith("-") else ("", "", token)
        if not value or is_plain(value):
            continue
        if eq:  # --flag=value: keep the flag
            message = message.replace(token, f"{name}={HIDDEN}")
        message = message.replace(repr(value), repr(HIDDEN)).replace(value, HIDDEN)
    return message
