"""Signals during a launch, without Ray (the chaos suite does it with Ray): the first unwinds
with cleanup and exits 128 + signal, the second exits at once."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

SCRIPT = """
import sys, time
from hwsearch.app.signals import interruptible
try:
    with interruptible():
        try:
            print("ready", flush=True)
            time.sleep(3600)
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
    out, err = proc.communicate(timeout=120)  # a hang guard
    assert proc.returncode == code, err
    assert out.split() == ["cleanup", "cleaned"]
    assert "stopping (again to exit at once)" in err


def test_second_signal_exits_at_once() -> None:
    """The cleanup here would take an hour: the process exits during it, not after it."""
    proc = _start(3600)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "cleanup"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)  # a hang guard, far inside the cleanup's hour
    assert proc.returncode == 143 and "cleaned" not in out
    assert "interrupted again; exiting now" in err


ENDING = """
import atexit, os, signal, sys, time
from hwsearch import cli

def stopped(args):  # a command the first Ctrl-C has unwound
    raise KeyboardInterrupt

class _Parser:  # the real parser; its command replaced by one that was interrupted
    def __init__(self, parser):
        self.parser = parser
    def parse_args(self, argv):
        args = self.parser.parse_args(argv)
        args.func = stopped
        return args

real = cli.build_parser
cli.build_parser = lambda light=False: _Parser(real(light))

def second_ctrl_c():  # while the process ends (where Ray's exit handlers run)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(60)
    print("outlived the signal", flush=True)

atexit.register(second_ctrl_c)
sys.exit(cli.main(["status", "--storage", "sqlite:///unused.db"]))
"""


def test_a_second_signal_while_the_cli_ends_after_an_interrupt_exits_at_once(tmp_path) -> None:
    """The launch's cleanup can be over (its handlers restored) before the user's second
    Ctrl-C lands, in the process's last moments: that signal still exits 130 at once, with
    its line; not death by the signal (no exit code), nor a traceback, nor a minute's wait."""
    proc = subprocess.run([sys.executable, "-c", ENDING], text=True, capture_output=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert "hwsearch: interrupted\n" in proc.stderr
    assert "interrupted again; exiting now" in proc.stderr
    assert "outlived" not in proc.stdout and "Traceback" not in proc.stderr
