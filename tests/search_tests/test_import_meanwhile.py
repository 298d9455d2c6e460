"""``import_meanwhile``: a launch imports Ray Tune on a thread while Ray starts. The modules
are imported when it ends; a module that fails stops it quietly, and the caller's own import
meets the error (so a broken install still fails in one place, the main thread)."""

from __future__ import annotations

import importlib
import sys

import pytest

from hwsearch.search.ray_setup import import_meanwhile


def test_modules_are_imported_and_a_failure_is_left_to_the_caller() -> None:
    for name in ("pyclbr", "tabnanny"):
        sys.modules.pop(name, None)
    thread = import_meanwhile("pyclbr", "no_such_module_of_hwsearch", "tabnanny")
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "pyclbr" in sys.modules
    assert "tabnanny" not in sys.modules  # it stopped at the failure
    with pytest.raises(ModuleNotFoundError, match="no_such_module_of_hwsearch"):
        importlib.import_module("no_such_module_of_hwsearch")
