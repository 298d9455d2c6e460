"""The Python API: the use cases of the command line as functions (``hwsearch.app``).

    from hwsearch import api
    api.status(storage="sqlite:///highway-search.db")
    api.launch(models="plain,highway", depths="10,50", trials=12, epochs=5,
               data_dir="../shared/data/MNIST")

Arguments are keywords named as the settings (``hwsearch launch --help`` lists them with
dashes); errors are the layers' typed exceptions, whose messages name a setting as
```name```.
"""

from __future__ import annotations

from hwsearch.app.dashboard import dashboard
from hwsearch.app.export import export
from hwsearch.app.launch import launch
from hwsearch.app.queries import best, status, trials
from hwsearch.app.report import report
from hwsearch.app.train import train, train_settings

__all__ = ["best", "dashboard", "export", "launch", "report", "status", "train",
           "train_settings", "trials"]
