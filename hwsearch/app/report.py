"""The report: the papers' figures and claims as one offline HTML page, from a database that must
exist and is only read. The dataset and the output directory are checked before it is opened."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from hwsearch.options import ConfigError, did_you_mean
from hwsearch.output import check_out_dir
from hwsearch.training import DATASETS

from .quiet import quiet_optuna
from .storage_url import resolve_storage


def report(
    out: str | Path, dataset: str = "mnist", study: str | None = None,
    data_dir: str | None = None, seed: int = 0, *, storage: str | None = None,
    storage_file: str | None = None, progress: TextIO | None = None,
) -> Path:
    """Write ``out/index.html`` for ``dataset``'s studies (``study``: only its diagnostics);
    returns its path. ``data_dir`` feeds the gate and lesioning figures; ``seed`` draws their
    random training examples. Each stage is a line on ``progress`` (none if None)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}; "
                          f"allowed: {', '.join(DATASETS)}")
    url = resolve_storage(storage, storage_file)
    check_out_dir(out)
    quiet_optuna()
    from hwsearch.report import write_report  # torch: the input is good

    def on_stage(k: int, n: int, what: str) -> None:
        if progress is not None:
            print(f"report: stage {k}/{n}: {what}", file=progress, flush=True)

    return write_report(url, out, dataset=dataset, study=study, data_dir=data_dir, seed=seed,
                        on_stage=on_stage)
