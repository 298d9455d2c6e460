"""The house rules, read from the source (no import runs): the layers import one way, only the
application layer prints or exits, and no library knows a command-line flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hwtest import REPO

# Bottom up; a layer may import those before it, never those after.
LAYERS = ("models", "training", "storage", "search", "report")
APP = ("hwsearch.app", "hwsearch.cli", "hwsearch.api", "hwsearch.flags", "hwsearch.usage")
SHARED = ("options.py", "compat.py", "output.py", "__init__.py")  # hwsearch/: below every layer
EXITS = {("sys", "exit"), ("os", "_exit"), ("os", "write"), ("sys", "stdout"), ("sys", "stderr")}
# A flag in a library's text; a whole command (``hwsearch launch --epochs``) may be named.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
COMMAND = re.compile(r"hwsearch \w+ --[a-z][a-z-]*")


def _library_files() -> list[tuple[str, Path]]:
    files = [(layer, p) for layer in LAYERS for p in sorted((REPO / layer).glob("*.py"))]
    return files + [("shared", REPO / "hwsearch" / name) for name in SHARED]


LIBRARIES = _library_files()


def _imports(tree: ast.AST, package: str) -> set[str]:
    """Every module ``tree`` imports, absolute (``from .x import y`` in ``package`` resolved)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.add(f"{base}.{node.module}" if node.module else base)
            else:
                found.add(node.module or "")
    return found


def _ids(files: list[tuple[str, Path]]) -> list[str]:
    return [str(p.relative_to(REPO)) for _, p in files]


@pytest.mark.parametrize(("layer", "path"), LIBRARIES, ids=_ids(LIBRARIES))
def test_a_library_imports_only_the_layers_below_it(layer: str, path: Path) -> None:
    package = "hwsearch" if layer == "shared" else f"hwsearch.{layer}"
    above = LAYERS if layer == "shared" else LAYERS[LAYERS.index(layer) + 1:]
    banned = [f"hwsearch.{name}" for name in above] + list(APP)
    bad = sorted(m for m in _imports(ast.parse(path.read_text()), package)
                 if any(m == b or m.startswith(b + ".") for b in banned))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize(("layer", "path"), LIBRARIES, ids=_ids(LIBRARIES))
def test_a_library_never_prints_or_exits(layer: str, path: Path) -> None:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in ("print", "exit", "quit")):
            found.append(f"line {node.lineno}: {node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id, node.attr) in EXITS):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id == "SystemExit":
            found.append(f"line {node.lineno}: SystemExit")
    assert not found, f"{path.relative_to(REPO)}: {found}"


@pytest.mark.parametrize(("layer", "path"), LIBRARIES, ids=_ids(LIBRARIES))
def test_a_library_knows_no_flag(layer: str, path: Path) -> None:
    """Its messages name a setting as ```name```; the command line shows the flag."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = COMMAND.sub("", node.value)
            found += [f"line {node.lineno}: {m}" for m in FLAG.findall(text)]
    assert not found, f"{path.relative_to(REPO)}: {found}"


def test_the_rules_see_what_they_forbid(tmp_path: Path) -> None:
    tree = ast.parse("import sys\nfrom ..report import x\nprint(1)\nsys.exit(2)\n")
    assert "hwsearch.report" in _imports(tree, "hwsearch.search")
    assert FLAG.findall(COMMAND.sub("", "no --data-dir; see hwsearch launch --epochs")) == [
        "--data-dir"]
