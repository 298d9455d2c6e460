"""``python -m hwsearch``: the ``hwsearch`` command."""

import sys

from hwsearch.search.cli import main

sys.exit(main())
