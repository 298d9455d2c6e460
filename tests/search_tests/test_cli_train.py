"""``hwsearch train`` as a user runs it: a subprocess, JSON on stdout, progress and errors on
stderr, exit code 2 with one line for every bad flag.

Every command starts at once (module fixture) so the interpreter start-ups overlap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwtest import REPO

ROOT = REPO
SMALL = ["--limit-train", "1000", "--depth", "5", "--device", "cpu"]
# Every bad-flag command would otherwise be a short valid run, so a missing check shows up as
# a wrong exit code, not as a long training run.
QUICK = ["--limit-train", "100", "--epochs", "1", "--depth", "2", "--device", "cpu", "--no-test"]

BAD_FLAGS = {  # name: (flags, text the one-line error must contain)
    "negative-lr": (["--lr", "-0.1"], "lr -0.1"),
    "depth-0": (["--depth", "0"], "depth 0"),
    "unknown-activation": (["--activation", "gelu"], "'gelu'"),
    "momentum-1": (["--momentum", "1"], "momentum 1.0"),
    "missing-data-dir": (["--data-dir", "{missing}"], "{missing}"),
    "unknown-dataset": (["--dataset", "imagenet"], "'imagenet'"),
    "non-numeric-depth": (["--depth", "ten"], "'ten'"),
    "unknown-model": (["--model", "resnet"], "'resnet'"),
    "every-epoch-without-test": (["--test-every-epoch"], "--test-every-epoch measures the test "
                                 "set, which --no-test skips"),
}


# One OpenMP thread each: the commands run side by side, and on a small shared box spinning
# threads slow tiny nets down several times. Nothing the CLI prints depends on it.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def hwsearch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hwsearch", "train", *args], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """name -> (returncode, stdout, stderr, needle) for every command, run concurrently."""
    missing = str(tmp_path_factory.mktemp("cli") / "no-such-dir")
    data = ["--data-dir", str(mnist_dir)]
    procs: dict[str, tuple[subprocess.Popen[str], str]] = {
        "ok": (hwsearch(*data, *SMALL, "--epochs", "2", "--json"), ""),
        "diverged": (hwsearch(*data, *SMALL, "--epochs", "3", "--lr", "1e6", "--activation",
                              "relu", "--json"), ""),
        "every": (hwsearch(*data, *SMALL, "--epochs", "2", "--json", "--test-every-epoch"), ""),
    }
    for name, (flags, needle) in BAD_FLAGS.items():
        flags = [f.replace("{missing}", missing) for f in flags]
        procs[name] = (hwsearch(*data, *QUICK, *flags), needle.replace("{missing}", missing))
    out = {}
    try:
        for name, (proc, needle) in procs.items():
            stdout, stderr = proc.communicate(timeout=240)
            out[name] = (proc.returncode, stdout, stderr, needle)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
    return out


@pytest.mark.slow
def test_train_json(runs: dict[str, tuple]) -> None:
    code, stdout, stderr, _ = runs["ok"]
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert set(summary) == {"train_loss", "best_epoch", "final_train_loss", "final_running_loss",
                            "train_accuracy", "test_accuracy", "epochs", "seconds", "params",
                            "diverged"}
    assert summary["best_epoch"] in (1, 2)
    assert summary["epochs"] == 2 and summary["diverged"] is False
    assert summary["params"] == 784 * 50 + 50 + 4 * 5_100 + 510
    assert 0 < summary["train_loss"] <= summary["final_train_loss"] < 2.5
    assert 0.1 < summary["train_accuracy"] <= 1 and 0.1 < summary["test_accuracy"] <= 1
    assert summary["seconds"] > 0
    progress = [line for line in stderr.splitlines() if line.startswith("epoch ")]
    assert len(progress) == 2, stderr
    for epoch, line in enumerate(progress, start=1):
        assert re.match(rf"epoch {epoch}/2: train_loss [\d.]+ \(whole training set; running "
                        r"[\d.]+\) train_acc [\d.]+ lr ", line), line  # the test set: once
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_train_measures_the_test_set_every_epoch_when_asked(runs: dict[str, tuple]) -> None:
    code, stdout, stderr, _ = runs["every"]
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    progress = [line for line in stderr.splitlines() if line.startswith("epoch ")]
    shown = [float(re.search(r" test_acc ([\d.]+) ", line)[1]) for line in progress]  # type: ignore[index]
    assert len(shown) == 2
    assert summary["test_accuracy"] == pytest.approx(shown[summary["best_epoch"] - 1], abs=1e-4)
    # the same run as "ok" (same seed and data): measured once, it reads the same
    ok = json.loads(runs["ok"][1].strip().splitlines()[-1])
    assert ok["test_accuracy"] == summary["test_accuracy"]


@pytest.mark.slow
def test_train_diverged(runs: dict[str, tuple]) -> None:
    code, stdout, stderr, _ = runs["diverged"]
    assert code == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["diverged"] is True and summary["epochs"] == 0
    assert summary["train_loss"] is None and summary["test_accuracy"] is None
    assert [line for line in stderr.splitlines() if line.startswith("epoch ")] == [
        "epoch 1/3: diverged (loss not finite or past 100x chance)"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BAD_FLAGS))
def test_bad_flag(runs: dict[str, tuple], name: str) -> None:
    code, stdout, stderr, needle = runs[name]
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hwsearch") and "error" in lines[0], lines[0]
    assert needle in lines[0], lines[0]
    assert stdout == ""
