"""A cluster that is not there (issue 21, class 6): a launch whose ``--ray-address`` names no
Ray cluster is refused in one line naming the address, exit code 2, before the database (or a
study in it) is created, within ``--ray-timeout`` (30 s unless told). The members of the class:
a closed port, a port that accepts and never speaks, one that speaks something else, an address
whose packets vanish (a network namespace of the test's own), a malformed address. The tests
assert the outcome and that nothing was created; the timeout only bounds how long they wait.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hwsearch.search.errors import LaunchError
from hwsearch.search.reach import check_cluster, split_address
from hwsearch.search.settings import build_settings
from hwtest import free_port, hwsearch_env, parts
from hwtest.netns import available

GUARD = 300  # a hang guard for the subprocess, not a duration under test


def _launch(tmp_path: Path, address: str, *extra: str, ns: str | None = None):
    argv = [sys.executable, "-m", "hwsearch", "launch", "--ray-address", address,
            "--storage", f"sqlite:///{tmp_path / 'studies.db'}", "--models", "plain",
            "--depths", "2", "--trials", "1", *extra]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    env = {k: v for k, v in hwsearch_env().items() if not k.startswith("HWSEARCH_STORAGE")}
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=GUARD)


def _refused(out: subprocess.CompletedProcess[str], tmp_path: Path, *says: str) -> str:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    for words in says:
        assert words in lines[0], (words, lines[0])
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no database, lock file or study
    return lines[0]


@contextmanager
def _server(behaviour: str) -> Iterator[int]:
    """A loopback port that ``listens`` (a backlog, never accepted: the handshake completes in
    the kernel, then silence) or ``garbles`` (accepts and answers as an HTTP/1.1 server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def answer() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True) if behaviour == "garbles" else None
    if thread:
        thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        if thread:
            thread.join()
        sock.close()


def test_a_closed_port_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    line = _refused(_launch(tmp_path, address), tmp_path, f"no Ray cluster at {address}",
                    "--ray-address")
    assert "refused" in line


def test_a_port_that_never_answers_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    with _server("listens") as port:
        address = f"127.0.0.1:{port}"
        _refused(_launch(tmp_path, address, "--ray-timeout", "2"), tmp_path,
                 f"no answer from a Ray cluster at {address} within 2 s", "--ray-timeout",
                 "--ray-address")


def test_a_port_that_speaks_something_else_is_not_a_cluster(tmp_path: Path) -> None:
    with _server("garbles") as port:
        address = f"127.0.0.1:{port}"
        _refused(_launch(tmp_path, address, "--ray-timeout", "20"), tmp_path,
                 f"no Ray cluster at {address}", "not a Ray cluster")


@contextmanager
def _void_namespace() -> Iterator[tuple[str, str]]:
    """A network namespace whose one subnet leads into a veth pair with nothing behind it,
    and a host there known by a MAC address no one has: packets to it leave and nothing ever
    comes back (no ARP failure, no reset), as with a host that is down or firewalled."""
    ns = f"hwvoid{uuid.uuid4().hex[:6]}"
    net, host = "10.233.7", "10.233.7.9"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        for cmd in (["link", "set", "lo", "up"],
                    ["link", "add", "void0", "type", "veth", "peer", "name", "void1"],
                    ["addr", "add", f"{net}.1/24", "dev", "void0"],
                    ["link", "set", "void1", "up"], ["link", "set", "void0", "up"],
                    ["neigh", "add", host, "lladdr", "02:00:5e:00:53:09", "dev", "void0",
                     "nud", "permanent"]):
            subprocess.run(["ip", "netns", "exec", ns, "ip", *cmd], check=True,
                           capture_output=True)
        yield ns, host
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_an_address_whose_packets_vanish_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    why = available()
    if why:
        parts.missing("network namespaces (root, iproute2)", why)
    with _void_namespace() as (ns, host):
        address = f"{host}:6379"
        _refused(_launch(tmp_path, address, "--ray-timeout", "3", ns=ns), tmp_path,
                 f"no answer from a Ray cluster at {address} within 3 s")


@pytest.mark.parametrize("address", ["head", "head:port", "head:6379/x", "http://head:0",
                                     "[::1"])
def test_a_malformed_address_names_what_is_allowed(tmp_path: Path, address: str) -> None:
    _refused(_launch(tmp_path, address), tmp_path, f"--ray-address {address!r}",
             "allowed: HOST:PORT, ray://HOST[:PORT], auto or local")


def test_the_timeout_defaults_to_30_s_and_is_bounded(tmp_path: Path) -> None:
    assert build_settings({}).ray_timeout == 30
    assert build_settings({"ray_timeout": 5}).ray_timeout == 5
    _refused(_launch(tmp_path, "127.0.0.1:1", "--ray-timeout", "0"), tmp_path,
             "ray-timeout 0.0 must be > 0")


@pytest.mark.slow
def test_a_real_ray_cluster_passes_the_probe() -> None:
    """Its GCS (a gRPC server) answers the handshake; through ``ray://`` too, where the same
    probe asks Ray Client's server (not started here: so that one is refused)."""
    import ray

    from hwsearch.compat import init_local_ray

    init_local_ray(include_dashboard=False, num_cpus=1)
    try:
        gcs = ray.get_runtime_context().gcs_address
        check_cluster(gcs, 30)
        with pytest.raises(LaunchError, match="refused"):
            check_cluster(f"ray://127.0.0.1:{free_port()}", 30)
    finally:
        ray.shutdown()


def test_addresses_split_as_ray_reads_them() -> None:
    assert split_address("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert split_address("ray://head") == ("head", 10001)
    assert split_address("[::1]:6379") == ("::1", 6379)
    check_cluster(None, 1)
    check_cluster("local", 1)  # a local Ray of our own: nothing to ask
    with pytest.raises(LaunchError, match="not a Ray address"):
        split_address("head")
