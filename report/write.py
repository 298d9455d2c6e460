"""``write_report``: read the storage, compute each figure's data, draw it, write one page.

Nothing is retrained. Weights come from the stored artifacts; training data only feeds the
analyses of Figure 2 and the lesioning, and when it is missing the page says so and draws the
rest. Any figure that lacks its data is replaced by a sentence saying what is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from hwsearch.models.fc import FCNet
from hwsearch.options import shown
from hwsearch.output import write_atomic
from hwsearch.storage import StudyStorage, open_storage
from hwsearch.storage.keep import kept_numbers
from hwsearch.storage.weights import load_trial_model
from hwsearch.training import HIGHWAY, DataError
from hwsearch.training.data import load_dataset

from . import sections
from .checks import ProtocolChecks, epochs_text
from .nets import Examples, bias_change_data, inner_workings_data, lesion_data, training_examples
from .page import Page, plotly_js
from .studies import StudyRecord, best_trial, load_studies, ranked

INDEX = "index.html"
STAGES = ("reading the studies", "loading Figure 2's net and the training data",
          "computing Figure 2 (the gates' and blocks' outputs)", "lesioning each layer",
          "drawing the figures and tables", "writing the page")
Stage = Callable[[int, int, str], None]  # (k, n, what): stage k of n begins
FIGURE2_DEPTH = 50


class ReportError(ValueError):
    """The report cannot be made as asked (e.g. an unknown study); the message says why."""


class Written(NamedTuple):
    """A written report: its page, and its claims' tables as the page words them."""

    path: Path
    claims: list[ProtocolChecks]


def write_report(
    storage_url: str,
    out_dir: str | Path,
    dataset: str = "mnist",
    study: str | None = None,
    data_dir: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    on_stage: Stage | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write ``out_dir/index.html`` for ``dataset``'s studies; returns its path (see
    :func:`write_report_with_claims`)."""
    return write_report_with_claims(storage_url, out_dir, dataset, study, data_dir, device, seed,
                                    on_stage, notes).path


def write_report_with_claims(
    storage_url: str,
    out_dir: str | Path,
    dataset: str = "mnist",
    study: str | None = None,
    data_dir: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    on_stage: Stage | None = None,
    notes: Sequence[str] = (),
) -> Written:
    """Write ``out_dir/index.html`` for ``dataset``'s studies; returns its path and claims.

    ``study`` restricts the search diagnostics to that study; ``data_dir`` holds the training
    data for Figure 2 and the lesioning (without it those panels say the data is missing);
    ``seed`` draws their random training examples; ``on_stage(k, n, what)`` is told as each
    of the :data:`STAGES` begins. ``notes`` are said at the top of the page (what the caller
    knows is missing, e.g. unusable training data).
    """
    stage = _Stages(on_stage)
    out = Path(out_dir)
    store = open_storage(storage_url, create=False)
    threads = torch.get_num_threads()
    # The analysed nets are small (width 50): a second thread saves little when the machine is
    # idle, and when it is busy, torch's threads wait on each other (the same forward pass took
    # 16 times the CPU with two threads as with one on a loaded 2-core machine:
    # docs/performance.md, "The report").
    torch.set_num_threads(1)
    try:
        stage("reading the studies")
        records, unknown = load_studies(store, dataset)
        if study is not None and study not in {r.name for r in records}:
            names = ", ".join(r.name for r in records) or "none"
            raise ReportError(f"no {dataset} study named {study!r}; {dataset} studies: {names}")
        page, tables = _build(store, records, unknown, dataset, study, data_dir,
                              torch.device(device), seed, stage, notes)
    finally:
        torch.set_num_threads(threads)
        store.close()
    stage("writing the page")
    out.mkdir(parents=True, exist_ok=True)
    return Written(write_atomic(out / INDEX, page.render(plotly_js())), tables)


def _build(
    store: StudyStorage, records: list[StudyRecord], unknown: list[str], dataset: str,
    study: str | None, data_dir: str | None, device: torch.device, seed: int,
    stage: _Stages,
    notes: Sequence[str] = (),
) -> tuple[Page, list[ProtocolChecks]]:
    page = Page(f"Highway networks reproduction report: {dataset}")
    page.raw(f"<h1>Highway networks: reproduction report ({dataset})</h1>")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page.paragraph(
        f"Storage {store.display_url}; {len(records)} {dataset} studies; generated {now}. "
        "Papers: Srivastava, Greff & Schmidhuber, Highway Networks (arXiv:1505.00387) and "
        "Training Very Deep Networks (arXiv:1507.06228).", "meta")
    for note in notes:
        page.missing(note)
    if unknown:
        page.missing(f"Left out {len(unknown)} studies not made by hwsearch (no recorded "
                     "configuration, or trials of other parameters): "
                     + ", ".join(map(shown, unknown)))
    if not records:
        page.missing(f"The storage holds no {dataset} study, so no figure has data.")

    stage("loading Figure 2's net and the training data")
    chosen, chosen_note = pick_highway_study(records)
    net, net_trial, net_note = _load_net(store, chosen)
    examples: Examples | None = None
    data_note = ""
    if net is not None:
        examples, data_note = _training_data(dataset, data_dir, chosen, device, seed)  # type: ignore[arg-type]
        net = net.to(device)
    stage("computing Figure 2 (the gates' and blocks' outputs)")
    inner = None
    if net is not None:
        inner = (inner_workings_data(net, examples.x, examples.sample,
                                     sample_index=examples.sample_index, seed=seed)
                 if examples is not None else inner_workings_data(net, None, seed=seed))
    stage("lesioning each layer")
    lesion = lesion_data(net, examples.x, examples.y) if net is not None and examples else None
    bias = bias_change_data(net) if net is not None else None
    net_label = (f"trial {net_trial.number} of {chosen.name}"
                 if chosen is not None and net_trial is not None else "")

    stage("drawing the figures and tables")
    tables = sections.summary(page, records, bias, net_label,
                              chosen.name if chosen is not None else "")
    sections.table1(page, records, dataset)
    sections.protocol(page)
    sections.figure1(page, records)
    net_title = (f"{net_label} ({chosen.dataset}, {chosen.depth} layers, "
                 f"{epochs_text(chosen.spec.get('epochs'))})" if net_label and chosen else "")
    sections.figure2(page, inner, net_label, chosen_note, net_note, data_note, net_title)
    sections.lesioning(page, lesion, net_label, chosen_note, net_note, data_note, net_title)
    sections.diagnostics(page, [r for r in records if study is None or r.name == study], study)
    return page, tables


class _Stages:
    """Numbers the :data:`STAGES` as they begin, for a caller's ``on_stage``."""

    def __init__(self, on_stage: Stage | None) -> None:
        self.on_stage = on_stage

    def __call__(self, what: str) -> None:
        if self.on_stage is not None:
            self.on_stage(STAGES.index(what) + 1, len(STAGES), what)


def pick_highway_study(records: Sequence[StudyRecord]) -> tuple[StudyRecord | None, str]:
    """The study of Figure 2: best 50-layer highway study, else the deepest (and says so)."""
    highway = [r for r in records if r.model == HIGHWAY and best_trial(r.trials) is not None]
    if not highway:
        return None, ("No highway study has a complete trial, so Figure 2 and the lesioning "
                      "lack data.")

    def best_value(r: StudyRecord) -> float:
        return float(best_trial(r.trials).value)  # type: ignore[union-attr, arg-type]

    at_50 = [r for r in highway if r.depth == FIGURE2_DEPTH]
    if at_50:
        return min(at_50, key=best_value), ""
    deepest = max(r.depth for r in highway)
    pick = min((r for r in highway if r.depth == deepest), key=best_value)
    return pick, (f"No {FIGURE2_DEPTH}-layer highway study has a complete trial; showing the "
                  f"deepest highway net instead ({deepest} layers, study {pick.name}).")


NET_TRIES = 20  # best trials with weights tried for Figure 2's net


def _load_net(
    store: StudyStorage, record: StudyRecord | None
) -> tuple[FCNet | None, FrozenTrial | None, str]:
    """The best kept trial's net (a launch keeps the weights of a study's best trials only);
    notes when a better kept trial's weights were unusable. Only the :data:`NET_TRIES` best
    are tried: each is read whole."""
    if record is None:
        return None, None, ""
    skipped = []
    kept = set(kept_numbers(store, record.name))
    candidates = [t for t in ranked(record.trials) if t.number in kept]
    for trial in candidates[:NET_TRIES]:
        try:
            model = load_trial_model(store, record.fetch(trial))
        except (LookupError, ArtifactNotFound, RuntimeError, ValueError, OSError) as e:
            skipped.append(f"trial {trial.number} ({e})")
            continue
        if not isinstance(model, FCNet) or not model.config.highway:
            skipped.append(f"trial {trial.number} (not a fully connected highway net)")
            continue
        note = ("Better trials without usable weights were skipped: " + "; ".join(skipped)
                if skipped else "")
        return model, trial, note
    if not candidates:
        return None, None, f"No complete trial of {record.name} has stored weights."
    which = (f"None of the {NET_TRIES} best kept trials" if len(candidates) > NET_TRIES
             else "No kept trial")
    return None, None, (f"{which} of {record.name} has usable stored weights: "
                        + "; ".join(skipped))


def _training_data(
    dataset: str, data_dir: str | None, record: StudyRecord, device: torch.device, seed: int
) -> tuple[Examples | None, str]:
    if data_dir is None:
        return None, ("No training data given (data_dir), so the data-dependent panels "
                      "are missing; the gate biases need none.")
    try:
        data = load_dataset(dataset, data_dir)
    except DataError as e:
        return None, (f"Training data unavailable ({e}); the data-dependent panels are "
                      "missing.")
    ex = training_examples(data.x_train, data.y_train, record.limit_train, seed)
    return Examples(ex.x.to(device), ex.y.to(device), ex.sample.to(device), ex.sample_index,
                    seed), ""
