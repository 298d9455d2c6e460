"""``python -m hwsearch``: the ``hwsearch`` command."""

import sys

from hwsearch.cli import main

sys.exit(main())
