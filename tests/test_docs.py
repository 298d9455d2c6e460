"""Every repository path the README and docs name exists: a stale reference misleads the next
reader more than a missing one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from hwtest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")),
        *sorted((REPO / "benchmarks").glob("*.md"))]
SUFFIXES = r"\.(py|md|sh|toml|yaml|yml|json|png|html|txt|cfg)$|/$"


def named_paths(text: str) -> set[str]:
    found = re.findall(r"`([A-Za-z0-9_./-]+)`", text) + re.findall(r"\]\(([A-Za-z0-9_./-]+)\)",
                                                                    text)
    found += re.findall(r"(?:python3?|bash|sh)\s+([A-Za-z0-9_./-]+\.(?:py|sh))", text)
    paths = set()
    for path in found:
        path = path.rstrip(".,:")
        if "/" not in path or path.startswith(("http", "/", "..", "-", "$")) or "*" in path:
            continue
        if path.split("/")[0].isupper() or not re.search(SUFFIXES, path):
            continue
        paths.add(path)
    return paths


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_paths_named_in_docs_exist(doc) -> None:
    missing = [p for p in sorted(named_paths(doc.read_text()))
               if not (REPO / p).exists() and not (doc.parent / p).exists()
               and not _user_made(p)]
    assert not missing, f"{doc.relative_to(REPO)} names paths that do not exist: {missing}"


def _user_made(path: str) -> bool:
    """Git-ignored paths the docs tell users to create (e.g. docker/secrets/)."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO).returncode == 0


def test_the_check_sees_a_missing_path() -> None:
    assert named_paths("see `search/no_such_module.py` and [x](docs/nothing.md)") == {
        "search/no_such_module.py", "docs/nothing.md"}


TEST_NODE = re.compile(r"((?:tests/)?[A-Za-z0-9_/]*test_\w+\.py)::(test_\w+)")


def module_named(path: str) -> Path | None:
    """The test module a doc names: ``tests/x/test_y.py``, or a bare ``test_y.py`` (as
    reliability.md's tables name them) when exactly one module under tests/ has that name."""
    if path.startswith("tests/"):
        return REPO / path
    found = [p for p in (REPO / "tests").rglob(path) if p.is_file()]
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_tests_named_in_docs_exist(doc) -> None:
    """``tests/x.py::test_y`` (or ``x.py::test_y``) in a doc (docs/testing.md maps each promise
    to its tests) names a test function that exists: a renamed test must take its doc with
    it."""
    missing = []
    for path, name in sorted(set(TEST_NODE.findall(doc.read_text()))):
        source = module_named(path)
        if source is None or not source.is_file() or not re.search(
                rf"^def {name}\b", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc.relative_to(REPO)} names tests that do not exist: {missing}"


def test_the_test_check_sees_a_missing_test() -> None:
    assert TEST_NODE.findall("`tests/test_docs.py::test_nothing_here`") == [
        ("tests/test_docs.py", "test_nothing_here")]
    assert TEST_NODE.findall("`test_db_faults.py::test_gone`") == [
        ("test_db_faults.py", "test_gone")]
    assert module_named("test_db_faults.py") == REPO / "tests/storage_tests/test_db_faults.py"
