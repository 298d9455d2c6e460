"""A package's public names, imported on first use (PEP 562).

Every command imports ``hwsearch.search.cli``, and refusals and read commands must not pay for
torch or Ray: so ``hwsearch.models``, ``hwsearch.training`` and ``hwsearch.search`` name their
exports here and load the defining module only when a name is first used."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose name ``n`` is defined in its
    submodule ``where[n]``; a loaded name is kept in the package, so it is looked up once."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{where[name]}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
