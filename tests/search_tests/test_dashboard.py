"""``hwsearch dashboard`` serves optuna-dashboard on our storage, on localhost by default."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna

from hwtest import REPO, hwsearch_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_reads_our_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    study = optuna.create_study(study_name="mnist-highway-d10", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsearch", "dashboard", "--storage", url, "--port", str(port)],
        cwd=REPO,
        env=hwsearch_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, proc.stderr.read1().decode() if proc.poll() is not None else ""
        names = [s["study_name"] for s in body["study_summaries"]]
        assert names == ["mnist-highway-d10"]
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout.split()
        assert listening[3] == f"127.0.0.1:{port}"  # local address column: loopback only
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
