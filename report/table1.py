"""Table 1: the conv studies' test accuracy beside the papers' (pure data; the page renders it).

The papers report a conv net's test accuracy as "best (mean ± std)" over a few runs of the
authors' full protocol. A study here gives the same figures over its top runs: the ``TOP``
complete trials with the lowest objective (training cross-entropy), each at its stored epoch.
A study is set beside the paper's number only for the same net (preset and width), and is
called comparable only when it trained on the whole training set for at least the authors'
iterations; otherwise the row says how short it was, so a 3-epoch run is never read as a
replication of a 180,000-iteration one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from hwsearch.models import PRESETS, parameter_count
from hwsearch.training import DATASETS

from .studies import StudyRecord, ranked

TOP = 5  # the papers' "best (mean ± std)" are over 5 runs where available


class PaperResult(NamedTuple):
    dataset: str
    model: str | None  # the preset it is; None: the paper's net has no published definition
    width: int  # 0: the preset's own
    net: str
    accuracy: float
    source: str


PAPERS = (
    PaperResult("mnist", "mnist-highway-10", 16, "Highway, 10 layers, 39K parameters", 0.9943,
                "arXiv:1507.06228, Table 1"),
    PaperResult("mnist", "mnist-highway-10", 32, "Highway, 10 layers, 151K parameters", 0.9955,
                "arXiv:1507.06228, Table 1"),
    PaperResult("cifar10", "cifar10-highway-19", 0, "Highway 2, 19 layers, ~2.3M parameters",
                0.9224, "arXiv:1505.00387, Table 1"),
    PaperResult("cifar10", None, 0, "Highway 1, 11 layers, ~236K parameters", 0.8918,
                "arXiv:1505.00387, Table 1"),
)


class Table1Row(NamedTuple):
    study: str
    model: str
    width: int
    params: int
    epochs: int | None
    iterations: int | None  # SGD steps the study's trials took (epochs × steps per epoch)
    recipe: str
    runs: int  # complete trials the figures are over (at most TOP)
    best: float | None
    mean: float | None
    std: float | None  # sample standard deviation; None for one run
    paper: PaperResult | None
    paper_iterations: int
    comparable: bool
    protocol: str  # what the study did, and how it stands against the authors' run


def _paper_for(dataset: str, model: str, width: int) -> PaperResult | None:
    own = PRESETS[model].default_width
    for p in PAPERS:
        if p.dataset == dataset and p.model == model and (p.width or own) == (width or own):
            return p
    return None


def table1_data(records: Sequence[StudyRecord], top: int = TOP) -> list[Table1Row]:
    """One row per conv study (in the order given); FC studies are not in Table 1."""
    rows = []
    for r in records:
        if r.family is None or not r.in_table1:
            continue
        width = int(r.spec.get("width") or 0)
        runs = ranked(r.trials)[:top]
        accs = []
        for t in runs:
            acc = r.test_accuracy(t)
            if acc is not None:
                accs.append(float(acc))
        mean = sum(accs) / len(accs) if accs else None
        std = (math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
               if mean is not None and len(accs) > 1 else None)
        recipe = r.family.recipe
        epochs = r.spec.get("epochs")
        size = DATASETS[r.dataset].train if r.dataset in DATASETS else 0
        n = r.limit_train or size
        batch = r.spec.get("batch_size") or recipe.batch_size
        iterations = int(epochs) * (min(n, size) // int(batch)) if epochs and n else None
        whole = r.limit_train is None or r.limit_train >= size
        comparable = bool(iterations and iterations >= recipe.iterations and whole)
        steps = f"{iterations:,}" if iterations else "?"
        protocol = (f"{epochs} epochs of batch {batch} = {steps} iterations on "
                    f"{'all' if whole else f'the first {n:,}'} training examples; recipe "
                    f"{r.spec.get('recipe', recipe.name)}")
        if not comparable:
            protocol += (f". SHORTER than the authors' {recipe.iterations:,} iterations on all "
                         "the data: not comparable with the paper's number")
        rows.append(Table1Row(
            r.name, r.model, width or r.family.default_width,
            parameter_count(r.model, width), epochs, iterations,
            str(r.spec.get("recipe", recipe.name)), len(accs), max(accs, default=None), mean,
            std, _paper_for(r.dataset, r.model, width), recipe.iterations, comparable, protocol,
        ))
    return rows


def unmatched_papers(dataset: str, rows: Sequence[Table1Row]) -> list[PaperResult]:
    """The papers' results for ``dataset`` no study of this report stands beside."""
    shown = {row.paper for row in rows if row.paper is not None}
    return [p for p in PAPERS if p.dataset == dataset and p not in shown]
