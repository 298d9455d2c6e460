"""What `pip install highway-search` puts in site-packages: one top-level package, hwsearch,
whose subpackages are the repository's folders, and the `hwsearch` command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hwtest import REPO


@pytest.mark.slow
def test_the_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"hwsearch"}
    for package in ("app", "models", "training", "storage", "search", "report"):
        assert f"hwsearch/{package}/__init__.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hwsearch = hwsearch.cli:main" in zipfile.ZipFile(wheel).read(
        entry_points).decode()


def test_runs_in_place_from_a_checkout() -> None:
    """`python -m hwsearch` from the repository root finds the subpackages beside hwsearch/."""
    out = subprocess.run([sys.executable, "-m", "hwsearch", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "launch" in out.stdout
