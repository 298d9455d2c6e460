"""The real parts the suite runs on (PostgreSQL, MNIST, Chromium, a C++ compiler, root for
network namespaces and tmpfs, Fashion-MNIST): a test that lacks one skips, saying what is
missing, and CI turns that skip into a failure.

Every such skip goes through :func:`missing` (or a ``skipif`` whose reason starts with
:data:`PREFIX`); ``tests/conftest.py`` fails those tests when ``$HWSEARCH_REQUIRE_REAL_PARTS``
is 1, as ``.ci/run`` sets it, so a CI machine without a part goes red instead of green with
fewer tests.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

PREFIX = "missing real part: "
REQUIRE_ENV = "HWSEARCH_REQUIRE_REAL_PARTS"


def required() -> bool:
    """True when a missing part must fail the run (CI), not skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def reason(part: str, detail: str) -> str:
    """A skip reason the conftest hook recognises: ``missing real part: PART: DETAIL``."""
    return f"{PREFIX}{part}: {detail}"


def missing(part: str, detail: str) -> NoReturn:
    """Skip the test for lack of ``part`` (a failure under ``$HWSEARCH_REQUIRE_REAL_PARTS``)."""
    pytest.skip(reason(part, detail))
