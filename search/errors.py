"""Errors of the search service that end a command with a one-line message (exit code 2)."""


class LaunchError(RuntimeError):
    """The search cannot go on; the message says why in one line."""
