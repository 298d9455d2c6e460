"""The report: the papers' figures and claims as one offline HTML page, from a database that must
exist and is only read. The dataset and the output directory are checked before it is opened."""

from __future__ import annotations

from pathlib import Path

from hwsearch.options import ConfigError
from hwsearch.output import check_out_dir
from hwsearch.training import DATASETS

from .quiet import quiet_optuna
from .storage_url import resolve_storage


def report(
    out: str | Path, dataset: str = "mnist", study: str | None = None,
    data_dir: str | None = None, seed: int = 0, *, storage: str | None = None,
    storage_file: str | None = None,
) -> Path:
    """Write ``out/index.html`` for ``dataset``'s studies (``study``: only its diagnostics);
    returns its path. ``data_dir`` feeds the gate and lesioning figures; ``seed`` draws their
    random training examples."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
    url = resolve_storage(storage, storage_file)
    check_out_dir(out)
    quiet_optuna()
    from hwsearch.report import write_report  # torch: the input is good

    return write_report(url, out, dataset=dataset, study=study, data_dir=data_dir, seed=seed)
