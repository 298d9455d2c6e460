"""The report: the papers' figures and claims as one offline HTML page, from a database that must
exist and is only read. The dataset, the training data and the output directory are checked
before it is opened.

Figure 2 and the lesioning draw on the training data. Without it the page would quietly lose
them, so a missing or unusable ``data_dir`` is an error unless ``skip_data_figures`` says they
may be left out; then the page and stderr both say what is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from hwsearch.flags import render
from hwsearch.options import ConfigError, check_name, did_you_mean
from hwsearch.output import OutputError, check_out_dir
from hwsearch.storage import open_storage
from hwsearch.training import DATASETS, DataError, check_dataset

from .quiet import quiet_optuna
from .storage_url import resolve_storage


def report(
    out: str | Path, dataset: str = "mnist", study: str | None = None,
    data_dir: str | None = None, seed: int = 0, *, storage: str | None = None,
    storage_file: str | None = None, skip_data_figures: bool = False,
    progress: TextIO | None = None, err: TextIO = sys.stderr,
) -> Path:
    """Write ``out/index.html`` for ``dataset``'s studies (``study``: only its diagnostics);
    returns its path. ``data_dir`` feeds the gate and lesioning figures (required unless
    ``skip_data_figures``); ``seed`` draws their random training examples. Each stage is a
    line on ``progress`` (none if None)."""
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}; "
                          f"allowed: {', '.join(DATASETS)}")
    check_name("study", study)
    url = resolve_storage(storage, storage_file)
    check_out_dir(out)
    quiet_optuna()
    open_storage(url, create=False).close()  # a typo in the URL, an old schema: said first
    missing = _data_problem(dataset, data_dir)
    if missing and not skip_data_figures:
        raise DataError(f"{missing}; Figure 2 and the lesioning need the training data: give "
                        "`data_dir`, or `skip_data_figures` to draw the page without them")
    notes = []
    if missing:
        notes.append(f"{missing}; the page is drawn without Figure 2's data and the lesioning "
                     "(skip_data_figures)")
        print(f"hwsearch: warning: {render(notes[0])}", file=err, flush=True)
    from hwsearch.report import write_report  # torch: the input is good

    def on_stage(k: int, n: int, what: str) -> None:
        if progress is not None:
            print(f"report: stage {k}/{n}: {what}", file=progress, flush=True)

    try:
        return write_report(url, out, dataset=dataset, study=study, data_dir=data_dir,
                            seed=seed, on_stage=on_stage, notes=notes)
    except OSError as e:  # a full disk, a quota: the page is written whole or not at all
        raise OutputError(f"cannot write `out` {out}: {e.strerror or e}") from None


def _data_problem(dataset: str, data_dir: str | None) -> str:
    """Why the training data cannot be used ("" when it can)."""
    if data_dir is None:
        return f"no `data_dir` for {dataset}"
    try:
        check_dataset(dataset, data_dir)
    except DataError as e:
        return str(e)
    return ""
