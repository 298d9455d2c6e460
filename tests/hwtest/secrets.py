"""Watching a directory for a secret while something runs in it: every file under it is read,
again and again, until the watch stops, and each file that ever held the secret is named.
For what a launch writes and removes before it ends (Tune's experiment directory)."""

from __future__ import annotations

import threading
from pathlib import Path


class SecretWatch:
    """``with SecretWatch(root, secret) as watch: ...``; then ``watch.hits`` (files that held
    the secret) and ``watch.seen`` (every file read at least once)."""

    def __init__(self, root: Path, secret: str) -> None:
        self.root, self.secret = root, secret.encode()
        self.hits: set[Path] = set()
        self.seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def scan(self) -> None:
        for path in self.root.rglob("*"):
            try:
                if not path.is_file() or path.is_symlink():
                    continue
                data = path.read_bytes()
            except OSError:
                continue  # gone meanwhile, or a socket
            self.seen.add(path)
            if self.secret in data:
                self.hits.add(path)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(0.5)

    def __enter__(self) -> SecretWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        self.scan()  # and once more, whatever is left
