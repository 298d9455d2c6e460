"""Usage errors that never repeat what was typed.

argparse quotes the values it rejects and lists unrecognised arguments whole, so a typo such as
``--stoarge postgresql+psycopg://u:pw@h/db`` would print the password. Flag names are kept (they
say what went wrong); every value from the command line is replaced by ``…``.
"""

from __future__ import annotations

from collections.abc import Sequence

HIDDEN = "…"
UNRECOGNIZED = "unrecognized arguments: "


def redact(message: str, argv: Sequence[str]) -> str:
    """``message`` with every command-line value in it hidden; flag names stay."""
    if message.startswith(UNRECOGNIZED):
        names = [t.split("=", 1)[0] for t in message[len(UNRECOGNIZED):].split()
                 if t.startswith("-")]
        listed = " ".join(names) if names else HIDDEN
        return f"{UNRECOGNIZED}{listed} (values not shown)"
    for token in sorted(set(argv), key=len, reverse=True):
        if token.startswith("-"):
            name, eq, value = token.partition("=")
            if eq:  # --flag=value: keep the flag
                message = message.replace(token, f"{name}={HIDDEN}")
                message = message.replace(repr(value), repr(HIDDEN))
            continue
        if token:
            message = message.replace(repr(token), repr(HIDDEN))
            message = message.replace(token, HIDDEN) if len(token) >= 8 else message
    return message
