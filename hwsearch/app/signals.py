"""Ctrl-C and SIGTERM during a launch: the first unwinds it, the second ends it at once.

The first signal raises :class:`Interrupted` in the main thread, so the launch's ``ExitStack``
runs: its trials are failed and handed back (a rerun replaces them at once), Tune's temporary
directory is removed, the local Ray is shut down. The exit code is 128 + the signal (130 for
SIGINT, 143 for SIGTERM). Someone who presses Ctrl-C again does not want to wait for that:
the second signal exits the process immediately, ending every process it started (a local
Ray's); the trials left RUNNING go stale after the grace period.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The launch was stopped by a signal; :attr:`exit_code` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _descendants() -> list[int]:
    """This process's live descendants (from /proc): a local Ray's daemons and workers."""
    children: dict[int, list[int]] = {}
    try:
        entries = list(os.scandir("/proc"))
    except OSError:  # no /proc: nothing to find
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"hwsearch: interrupted again; exiting now\n")
    # Ray's own daemons die with their parent, but the agents the raylet starts outlive it
    # for minutes: end everything this process started (a joined cluster's nodes are not ours).
    for pid in _descendants():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os._exit(128 + signum)


_received: list[int] = []  # the signal that stopped the launch


def exit_at_once() -> None:
    """From here to the end of the process, SIGINT or SIGTERM ends it at once (128 + the
    signal, after the "interrupted again" line). For a process that is ending after an
    interrupt: the launch's cleanup is done and its handlers restored, but Ray's exit
    handlers and the interpreter's teardown still run, and a second Ctrl-C there would
    otherwise die by the signal (no exit code) or print a KeyboardInterrupt traceback."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _exit_now)


def _first(signum: int, frame: FrameType | None) -> None:
    _armed.clear()
    _received.append(signum)
    exit_at_once()
    os.write(2, f"hwsearch: {signal.Signals(signum).name}; stopping (again to exit at once)\n"
             .encode())
    raise Interrupted(signum)


_armed = threading.Event()  # set while interruptible() is in force and nothing has come yet


def take_back() -> None:
    """Reinstall the handlers after a library replaced them: ``ray.init`` installs its own
    SIGTERM handler (a stack dump, then abort), which would skip every cleanup."""
    if _armed.is_set() and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _first)


@contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT and SIGTERM as described above. Only from the main thread (elsewhere a
    no-op: signals are delivered to the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Tune would take SIGINT for itself and end the run "gracefully" without telling us.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _first)
    _armed.set()
    _received.clear()
    try:
        yield
    except KeyboardInterrupt as e:
        # Libraries on the way (Tune) may catch ours and raise a plain KeyboardInterrupt.
        if _received and not isinstance(e, Interrupted):
            raise Interrupted(_received[0]) from None
        raise
    finally:
        _armed.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)
