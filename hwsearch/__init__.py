"""highway-search: the Highway Networks papers' random searches at cluster scale.

One import namespace for the repository's top-level folders: ``hwsearch.models`` is models/,
``hwsearch.training`` training/, ``hwsearch.storage`` storage/, ``hwsearch.search`` search/ and
``hwsearch.report`` report/, each through a committed relative symlink in this folder
(``hwsearch/models -> ../models``), so plain Python, static tools and setuptools see the same
mapping. Layers, bottom up: models → training → storage → search → report, then the
application layer (the command line). docs/architecture.md draws them.
"""

from __future__ import annotations

import time

# When the process began importing hwsearch: the start of the launcher's time line.
STARTED = time.perf_counter()
