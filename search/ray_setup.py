"""Starting or joining Ray, with only what a search needs, and leaving loopback as loopback."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from hwsearch.compat import (
    LOOPBACK,
    TUNE_TRIAL_DEFAULT_ENV,
    init_local_ray,
    ray_keeps_idle_workers_env,
    ray_keeps_loopback,
    ray_workers_at_driver_priority_env,
)
from hwsearch.storage.url import ENV_VAR, FILE_ENV_VAR

from .errors import LaunchError

LOOPBACKS = (LOOPBACK, "localhost", "::1")
SECRET_ENV = (ENV_VAR, FILE_ENV_VAR, "PGPASSWORD")


def is_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"//{address}").hostname or ""
    return host in LOOPBACKS


def quiet_ray() -> None:
    """Tune's console output off (our progress lines are the interface); no result files."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    # Tune's result files are off (the database keeps the results), so its analysis step would
    # warn about each trial's missing result.json.
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class LocalRay:
    """A Ray this process started, and the environment its processes (and so every worker)
    inherited."""

    environ: Mapping[str, str]


@contextmanager
def _environ_for_ray() -> Iterator[Mapping[str, str]]:
    """The environment a local Ray starts with, and its workers inherit.

    The database's credentials out: they need no database; the driver has its URL already,
    and libpq reads PGPASSWORD again on each new connection, so it comes back. The variables
    Tune would give each trial actor as a runtime environment in, so that the actors can take
    the workers Ray starts when the driver connects (``tune_trials_on_prestarted_workers``).
    Ray told to keep those workers while the trials' placement groups hold every CPU, and to
    start its workers at the launch's own priority. A value the user set is left as it is."""
    saved = {k: os.environ.pop(k) for k in SECRET_ENV if k in os.environ}
    wanted = {
        **TUNE_TRIAL_DEFAULT_ENV,
        **ray_keeps_idle_workers_env(os.cpu_count() or 1),
        **ray_workers_at_driver_priority_env(),
    }
    added = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield dict(os.environ)
    finally:
        for k in added:
            os.environ.pop(k, None)
        os.environ.update(saved)


def import_meanwhile(*modules: str) -> threading.Thread:
    """Import ``modules`` on a thread of their own: Ray Tune's import (about a second) then
    overlaps ``ray.init``, which mostly waits for the processes it starts. A failure there is
    left for the caller's own import to meet and report; join the thread before using them."""

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - the caller's import raises it again
                return

    thread = threading.Thread(target=run, name="hwsearch-imports", daemon=True)
    thread.start()
    return thread


def start_ray(address: str | None) -> LocalRay | None:
    """Join the cluster at ``address`` or start a local one: the :class:`LocalRay` when we
    started it (and stop it), else None."""
    import ray

    if ray.is_initialized():
        return None
    # Workers' own output stays in Ray's log files: our progress lines are the interface, and a
    # failed pack is reported through Tune and recorded on its trials.
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": True,
        "logging_level": logging.WARNING,
    }
    if not address:
        # "local": always a fresh cluster of our own, never one a `ray start` left running.
        with _environ_for_ray() as environ:
            init_local_ray(**kwargs)
        _check_node_address(LOOPBACK)
        return LocalRay(environ)
    if address != "auto" and is_loopback(address):
        with ray_keeps_loopback():
            ray.init(address=address, **kwargs)
        _check_node_address(LOOPBACK)
    else:
        ray.init(address=address, **kwargs)
    return None


def _check_node_address(wanted: str) -> None:
    """The node we run on advertises the address we asked for (else Ray changed under us)."""
    import ray

    got = ray.util.get_node_ip_address()
    if got != wanted:
        ray.shutdown()
        raise LaunchError(
            f"Ray advertises this node as {got}, not {wanted}: this Ray version no longer "
            "keeps loopback addresses (see hwsearch/compat.py)"
        )
