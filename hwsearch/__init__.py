"""highway-search: the Highway Networks papers' random searches at cluster scale.

One import namespace for the repository's top-level folders: ``hwsearch.models`` is models/,
``hwsearch.training`` training/, ``hwsearch.storage`` storage/, ``hwsearch.search`` search/ and
``hwsearch.report`` report/, each through a committed relative symlink in this folder
(``hwsearch/models -> ../models``), so plain Python, static tools and setuptools see the same
mapping. Layers, bottom up: models → training → storage → search → report, then the
application layer (the command line). docs/architecture.md draws them.
"""

from __future__ import annotations

import sys
import time
import types
from typing import Any

# When the process began importing hwsearch: the start of the launcher's time line.
STARTED = time.perf_counter()

# The Python API (hwsearch/api.py) at the top of the package, imported on first use so that
# ``import hwsearch`` stays light for the command line.
API = ("launch", "best", "trials", "load_model", "report", "studies", "status", "export",
       "BestTrial", "LaunchSummary", "StudyRun", "StudySummary")


def __getattr__(name: str) -> Any:
    if name in API:
        from hwsearch import api  # the application layer, above this package's own modules

        return getattr(api, name)
    raise AttributeError(f"module 'hwsearch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))


class _CallableReport(types.ModuleType):
    """The subpackage ``hwsearch.report`` (the report library) that is also the API's function:
    ``hwsearch.report(storage, out)`` calls ``hwsearch.api.report``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from hwsearch import api

        return api.report(*args, **kwargs)


class _Package(types.ModuleType):
    """This package, whose subpackage ``report`` shares its name with the API's ``report``:
    when Python binds the subpackage here on import, it is made callable (above)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "report" and type(value) is types.ModuleType:
            value.__class__ = _CallableReport
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
