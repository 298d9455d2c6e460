"""Starting or joining Ray.

Ray (2.5x) replaces a loopback node address with the host's network address, so a cluster bound
to 127.0.0.1 — the safe default on a laptop, and what tests use — would be left unreachable, and
a local Ray would listen on the network. :func:`pin_loopback` keeps 127.0.0.1 as given.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def pin_loopback() -> None:
    import ray._private.services as services

    services.resolve_ip_for_localhost = lambda host: host
    services.get_node_ip_address = lambda address=None: "127.0.0.1"


def is_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"//{address}").hostname or ""
    return host in LOOPBACK


def start_ray(address: str | None) -> bool:
    """Join the cluster at ``address`` or start a local one; True when we started it."""
    import ray

    if ray.is_initialized():
        return False
    # Workers' own output stays in Ray's log files: our progress lines are the interface, and a
    # failed pack is reported through Tune and recorded on its trials.
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": True,
        "logging_level": logging.WARNING,
    }
    if address and address != "auto":
        if is_loopback(address):
            pin_loopback()
        ray.init(address=address, **kwargs)
    elif address == "auto":
        ray.init(address="auto", **kwargs)
    else:
        pin_loopback()
        # "local": always a fresh cluster of our own, never one a `ray start` left running.
        ray.init(address="local", _node_ip_address="127.0.0.1", **kwargs)
    return True
