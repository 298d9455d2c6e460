"""The dashboard: optuna-dashboard served from this process, read-only by default.

In-process, not a child: a signal to ``hwsearch dashboard`` (Ctrl-C, SIGTERM from a service
manager) stops the server and frees its port; a child would outlive it. optuna-dashboard's API
deletes, renames and creates studies and tells trials, and anyone who reaches the port may call
it: a study deleted there loses its trials while its weights stay behind in the database. So
every request that could write (any method but GET, HEAD and OPTIONS) is answered 403 unless
``--allow-writes``. The weights stored with each trial (storage/artifacts.py) are passed as the
artifact store, so the dashboard lists and serves them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import socketserver
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hwsearch.storage import StudyStorage, mask_url, open_storage, parse_url
from hwsearch.storage.existing import check_sqlite_file, foreign, table_names

from .storage_url import resolve_storage

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORBIDDEN = json.dumps(
    {"reason": "this dashboard is read-only; start it with --allow-writes to change studies"}
).encode()

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_only(app: WSGIApp) -> WSGIApp:
    """``app`` answering 403 to every method that could write."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
            return app(environ, start_response)
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(FORBIDDEN)))],
        )
        return [FORBIDDEN]

    return guarded


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow browser never holds up shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def serve(
    store: StudyStorage,
    *,
    host: str,
    port: int,
    allow_writes: bool = False,
    out: TextIO = sys.stderr,
) -> int:
    """Serve until a signal; returns the exit code (130 for Ctrl-C, 143 for SIGTERM)."""
    import optuna_dashboard

    app: WSGIApp = optuna_dashboard.wsgi(store.optuna, artifact_store=store.artifacts)
    if not allow_writes:
        app = read_only(app)
    if not is_loopback(host):
        print(
            f"hwsearch: warning: the dashboard on {host} can be reached from other machines "
            "and has no login; anyone who reaches it reads every study"
            + (" and may delete them" if allow_writes else ""),
            file=out,
            flush=True,
        )
    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    mode = "read-write" if allow_writes else "read-only"
    print(
        f"optuna-dashboard ({mode}) on {store.display_url} at http://{host}:{port}/",
        file=out,
        flush=True,
    )
    # Both signals explicitly, as the launcher takes them: a shell starts a background job with
    # SIGINT ignored, and Python then leaves it ignored, so Ctrl-C's KeyboardInterrupt never came.
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.server_close()
    return 0


def check_port(host: str, port: int) -> None:
    """A port this process can listen on, tried before the database is opened: one line
    naming the port and why not (out of range, privileged, taken)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range; allowed: 1..65535")
    if port < 1024 and os.geteuid() != 0:
        raise ValueError(f"port {port} is privileged (below 1024) and this user may not "
                         "listen there; allowed: 1024..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            s.bind(infos[0][4])
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def dashboard(
    host: str = "127.0.0.1", port: int = 8080, allow_writes: bool = False, *,
    storage: str | None = None, storage_file: str | None = None, out: TextIO = sys.stderr,
) -> int:
    """Serve the database's studies until a signal; returns the exit code. A database holding
    studies is opened read-only (unless ``allow_writes``), so a file on a read-only mount is
    served. Unlike the read commands, an empty server database (no tables at all) gets
    Optuna's tables (a fresh compose stack starts the dashboard before the first launch); a
    SQLite file must exist and hold studies, and another application's database is refused."""
    check_port(host, port)
    url = resolve_storage(storage, storage_file)
    parsed, display = parse_url(url), mask_url(url)
    check_sqlite_file(parsed, display)
    tables = table_names(url, parsed, display)
    error = foreign(tables, display)
    if error is not None:
        raise error
    server_empty = not tables and parsed.get_backend_name() != "sqlite"
    store = open_storage(url, create=allow_writes or server_empty)
    try:
        return serve(store, host=host, port=port, allow_writes=allow_writes, out=out)
    finally:
        store.close()
