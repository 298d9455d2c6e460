"""A PostgreSQL server of a test's own (initdb and pg_ctl on a free port, in a temp dir), so a
test may stop, restart or break it without touching the shared server on 5432.

As root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from hwtest import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found (PostgreSQL server binaries)")
    return path


def server_binaries() -> str | None:
    """None when initdb, pg_ctl and createdb are here; else what is missing."""
    gone = []
    for name in ("initdb", "pg_ctl", "createdb"):
        try:
            _bin(name)
        except FileNotFoundError:
            gone.append(name)
    return f"{', '.join(gone)} not found (PostgreSQL server binaries)" if gone else None


class PGServer:
    """``start()``, ``stop()``, ``restart()``; ``url(db)`` for SQLAlchemy. ``close()`` stops it
    and removes its directory."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix="hwpg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        if host != "127.0.0.1":  # trust the test's own network too (it listens only on host)
            with open(self.data / "pg_hba.conf", "a") as f:
                f.write("host all all 0.0.0.0/0 trust\n")

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._user:
            cmd = ("runuser", "-u", self._user, "--", *cmd)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[-6:])} failed: {out.stderr[-1000:]}")
        return out

    def start(self) -> None:
        opts = (f"-p {self.port} -h {self.host} -k {self.dir} -c fsync=off "
                "-c max_connections=60 -c shared_buffers=16MB")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (clients see their connections dropped); ``immediate``
        is a crash."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop",
                  check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> None:
        self._run(_bin("createdb"), "-h", self.host, "-p", str(self.port), "-U", "postgres", name)

    def url(self, database: str, password: str = "") -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
