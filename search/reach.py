"""Is a Ray cluster there? Asked before a launch creates anything, within a deadline.

``ray.init`` on an address where no cluster answers can wait minutes (a host that drops
packets), or for ever (a port that accepts and never speaks), and a launch would have created
its studies first. So the address is probed here, in a thread the deadline abandons: a TCP
connection, then the start of the HTTP/2 handshake every gRPC server (Ray's GCS and its client
server) answers at once with a SETTINGS frame. No Ray import (``auto`` aside, which only Ray
can resolve), so a refused launch stays light.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

from .errors import LaunchError

NO_CHECK = (None, "", "local")  # a local Ray of our own (``local``: Ray's word for it)
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS = 0x4  # an HTTP/2 frame type: the server's first frame must be one (RFC 9113 3.4)
CLIENT_PORT = 10001  # Ray Client's default port, for ``ray://host``
ALLOWED = "HOST:PORT, ray://HOST[:PORT], auto or local"
TIMED_OUT = "timed out"


def check_cluster(address: str | None, timeout: float) -> None:
    """Raise :class:`LaunchError` unless a gRPC server answers at ``address`` (a Ray address
    as ``ray.init`` takes it) within ``timeout`` seconds; a local Ray needs no check."""
    if address in NO_CHECK:
        return
    target = _auto_address(address) if address == "auto" else address
    host, port = split_address(target)
    where = target if target == address else f"{target} (from `ray_address` auto)"
    outcome: list[str | None] = []
    # The socket's own timeout is longer: silence is judged here, at the deadline, once.
    probe = threading.Thread(target=lambda: outcome.append(_probe(host, port, timeout + 5)),
                             name="hwsearch-ray-probe", daemon=True)
    probe.start()
    probe.join(timeout)
    if not outcome or outcome[0] == TIMED_OUT:
        raise LaunchError(
            f"no answer from a Ray cluster at {where} within {timeout:g} s "
            "(`ray_timeout`); check `ray_address` and that the cluster's head is up"
        )
    if outcome[0] is not None:
        raise LaunchError(f"no Ray cluster at {where} (`ray_address`): {outcome[0]}")


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address; a malformed one is a :class:`LaunchError`."""
    client = address.startswith("ray://")
    try:
        parts = urlsplit(address if "://" in address else f"//{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if port is None and client:
        port = CLIENT_PORT
    if not host or port is None or port == 0 or (parts.path or "").strip("/"):
        raise LaunchError(f"`ray_address` {address!r} is not a Ray address; allowed: {ALLOWED}")
    return host, port


def _probe(host: str, port: int, timeout: float) -> str | None:
    """None when a gRPC server answers at ``host:port``; else what went wrong, in words."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            if _tls():
                return None  # a TLS server answers the handshake's first bytes with an alert
            conn.sendall(HTTP2_PREFACE)
            head = _read(conn, 9)
    except socket.gaierror as e:
        return f"cannot resolve {host!r} ({e.strerror})"
    except TimeoutError:
        return TIMED_OUT
    except OSError as e:
        return (e.strerror or type(e).__name__).lower()
    if len(head) < 9 or head[3] != SETTINGS:
        return "something answers there, but not a Ray cluster (no gRPC handshake)"
    return None


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _tls() -> bool:
    """Ray's GCS speaks TLS when ``RAY_USE_TLS`` is set (Ray's switch for it)."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _auto_address(address: str) -> str:
    """The cluster ``auto`` names (``RAY_ADDRESS``, else the one ``ray start`` left here)."""
    from hwsearch.compat import ray_auto_address

    try:
        return ray_auto_address()
    except (ConnectionError, ValueError) as e:
        first = str(e).split(". ")[0].splitlines()[0]
        raise LaunchError(f"`ray_address` {address}: {first}") from None
