"""The application layer: one function per use case, the command line and the Python API both
thin shells over them (``hwsearch.cli``, ``hwsearch.api``).

``launch`` (launch.py), ``train`` (train.py), ``status``, ``best`` and ``trials``
(queries.py), ``export`` (export.py), ``report`` (report.py) and ``dashboard``
(dashboard.py) take keyword arguments named as the settings are, return typed values and raise
the layers' typed errors, whose messages name a setting as ```name```. This layer alone
prints (progress, warnings) and owns the checks at the boundary; the libraries below it
(models, training, storage, search, report) never print, never exit and know no flag.
Each module imports torch or Ray only where its use case needs them, so a read command or a
refused launch starts without either.
"""
