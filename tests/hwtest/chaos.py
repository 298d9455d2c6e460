"""Helpers of the chaos suite: the processes of a launcher's session, its log. Waiting on a
study and exact counts are ``hwtest.launches``'."""

from __future__ import annotations

from pathlib import Path


def session_processes(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a launcher started with ``start_new_session``, and
    whatever it started that stayed in its session: Ray's processes do)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def log_tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def end_sessions(sids: list[int]) -> None:
    """SIGKILL whatever is left of these sessions (a failed test's launchers and their Ray,
    reparented or not; a session id stays with its processes)."""
    import os
    import signal

    for sid in sids:
        for pid in session_processes(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
