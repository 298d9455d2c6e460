"""Signals during a launch, without Ray (the chaos suite does it with Ray): the first unwinds
with cleanup and exits 128 + signal, the second exits at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, time
from hwsearch.app.signals import interruptible
try:
    with interruptible():
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            print("cleanup", flush=True)
            time.sleep(float(sys.argv[1]))
            print("cleaned", flush=True)
except KeyboardInterrupt as e:
    sys.exit(e.exit_code)
"""


def _start(cleanup_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(cleanup_s)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_cleans_up_and_exits_128_plus(sig: int, code: int) -> None:
    proc = _start(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert out.split() == ["cleanup", "cleaned"]
    assert "stopping (again to exit at once)" in err


def test_second_signal_exits_at_once() -> None:
    proc = _start(60)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "cleanup"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 143 and "cleaned" not in out
    assert "interrupted again; exiting now" in err
