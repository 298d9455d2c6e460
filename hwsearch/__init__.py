"""highway-search: the Highway Networks papers' random searches at cluster scale.

One import namespace for the repository's top-level folders, which install as its subpackages
(pyproject's ``package-dir``): ``hwsearch.models`` (models/), ``hwsearch.training``
(training/), ``hwsearch.storage`` (storage/), ``hwsearch.search`` (search/) and
``hwsearch.report`` (report/). Layers, bottom up: models → training → storage → search, report.
"""

from __future__ import annotations

import time
from pathlib import Path

# When the process began importing hwsearch: the start of the launcher's time line.
STARTED = time.perf_counter()

# In a source checkout the subpackages sit beside this folder, not inside it. An editable
# install maps them (pyproject's package-dir); this line does the same for a checkout that is
# run in place (``python -m hwsearch`` from the repository root), where this folder would
# otherwise shadow the mapping. An installed wheel has them inside, and the check is false.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "search" / "cli.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's __path__
