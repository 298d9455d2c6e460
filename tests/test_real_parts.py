"""The switch CI sets: a test whose real part is missing skips, saying what is missing, and
fails instead under ``$HWSEARCH_REQUIRE_REAL_PARTS=1`` (``.ci/run``)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from hwtest import REPO, hwsearch_env, parts

# A test that needs real MNIST, run where there is none.
PROBE = "tests/training_tests/test_data.py::test_real_mnist_via_train_config"


def _run(require: str) -> subprocess.CompletedProcess[str]:
    env = hwsearch_env(HWSEARCH_MNIST_DIR="/nonexistent/mnist", **{parts.REQUIRE_ENV: require})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rs", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize(("require", "code", "says"), [
    ("", 0, r"\b1 skipped"),
    ("0", 0, r"\b1 skipped"),
    ("1", 1, r"\b1 error"),  # the fixture failed: an error in the test's setup
])
def test_a_missing_part_skips_locally_and_fails_in_ci(require: str, code: int, says: str
                                                      ) -> None:
    out = _run(require)
    assert out.returncode == code, out.stdout[-2000:]
    assert re.search(says, out.stdout), out.stdout[-2000:]
    assert "missing real part: MNIST: not found at /nonexistent/mnist" in out.stdout
