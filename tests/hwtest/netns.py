"""Hosts of a test's own on one machine: network namespaces on a bridge, each with its own
address (veth pairs; iproute2, root only). A test can then cut one host's link as a network
failure would, and traffic goes only to addresses the test made.

    with Lan(3) as lan:           # lan.hosts[i].ip, lan.gateway (the bridge, root namespace)
        lan.hosts[0].popen([...])  # a command inside host 0
        lan.hosts[1].cut()         # its link goes down
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any


def _ip(*args: str, ns: str | None = None, check: bool = True) -> None:
    cmd = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")


def _forward_rule(action: str, bridge: str) -> None:
    """Let traffic between the bridge's own ports through the host's firewall. A host with a
    FORWARD policy of DROP and bridged traffic passed to iptables (what Docker leaves behind,
    even after its engine stops) would otherwise drop every packet between the hosts."""
    if subprocess.run(["which", "iptables"], capture_output=True).returncode != 0:
        return
    subprocess.run(["iptables", action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"],
                   capture_output=True, timeout=120)


def available() -> str | None:
    """None when namespaces can be made here; else why not."""
    name = f"hwprobe{uuid.uuid4().hex[:6]}"
    out = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if out.returncode != 0:
        return out.stderr.strip() or "ip netns add failed"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@dataclass
class Host:
    ns: str
    ip: str
    link: str  # the bridge-side end of its veth pair, in the root namespace

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd], **kwargs)

    def run(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], **kwargs)

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def cut(self) -> None:
        """The host's link goes down: nothing in or out, its processes keep running."""
        _ip("link", "set", self.link, "down")


class Lan:
    """``n`` namespaces on a bridge in 10.231.X.0/24 (X random); the bridge is .1."""

    def __init__(self, n: int) -> None:
        tag = uuid.uuid4().hex[:5]
        self.bridge = f"hwbr{tag}"
        net = f"10.231.{random.randint(1, 254)}"
        self.gateway = f"{net}.1"
        self.hosts = [Host(f"hw{tag}-{i}", f"{net}.{i + 2}", f"hw{tag}v{i}") for i in range(n)]

    def __enter__(self) -> Lan:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            _forward_rule("-I", self.bridge)
            for h in self.hosts:
                subprocess.run(["ip", "netns", "add", h.ns], check=True, capture_output=True)
                _ip("link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
                _ip("link", "set", h.link, "master", self.bridge)
                _ip("link", "set", h.link, "up")
                _ip("addr", "add", f"{h.ip}/24", "dev", "eth0", ns=h.ns)
                _ip("link", "set", "eth0", "up", ns=h.ns)
                _ip("link", "set", "lo", "up", ns=h.ns)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every process left in the hosts (by PID: ``ip netns pids``; Ray's agents rename
        their command lines, so a name would miss them), then remove the hosts and bridge."""
        for h in self.hosts:
            for pid in h.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for h in self.hosts:
            deadline = time.monotonic() + 120
            while h.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
            subprocess.run(["ip", "netns", "del", h.ns], capture_output=True)
            _ip("link", "del", h.link, check=False)  # at once, not when the kernel frees the ns
        _forward_rule("-D", self.bridge)  # only the rule this Lan added
        _ip("link", "del", self.bridge, check=False)
