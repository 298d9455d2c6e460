"""The report page's sections, in the order they appear: each takes the page and the data its
figures and tables need, and adds a heading, its figures or tables, and their captions; a
section without its data says what is missing instead."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from hwsearch.storage.records import count_trials
from hwsearch.training import FAMILIES, HIGHWAY, PLAIN

from . import figures
from .checks import (
    AGREES,
    DISAGREES,
    NOT_MEASURED,
    ProtocolChecks,
    by_protocol,
    claims,
    describe,
    epochs_text,
    summary_data,
)
from .data import TOP_RUNS, ecdf_data, figure1_data, importance_data, slice_data
from .page import Page
from .protocol import FIXED_BY_THE_PAPERS, OUR_CHOICES
from .studies import StudyRecord
from .table1 import TOP, table1_data, unmatched_papers

if TYPE_CHECKING:
    from .nets import BiasChange, InnerWorkings, LesionData


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "–" if value is None else format(value, spec)


def _params_text(params: dict[str, object]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())


def _width(model: str, width: int | None) -> str:
    known = FAMILIES.get(model)
    if width or known is None:
        return str(width) if width else "default"
    return known.width_label(0)


def summary(page: Page, records: list[StudyRecord], bias: BiasChange | None,
             net_label: str, bias_study: str) -> list[ProtocolChecks]:
    """The summary table and the claims' tables; returns the claims as the page words them."""
    page.section("summary", "Summary")
    rows = summary_data(records)
    if rows:
        page.table(
            ["Study", "Model", "Depth", "Width", "Epochs", "Train examples", "Complete",
             "Diverged", "Failed", "Best training CE", "Best trial", "Its test accuracy",
             "Its hyperparameters"],
            [[r.study, r.model, str(r.depth), _width(r.model, r.width), str(r.epochs or "–"),
              str(r.limit_train or "all"), (str(r.complete), "num"), (str(r.diverged), "num"),
              (str(r.failed), "num"), (_fmt(r.best_value), "num"),
              "–" if r.best_trial is None else str(r.best_trial),
              (_fmt(r.test_accuracy, ".2%") if r.test_accuracy is not None else "–", "num"),
              _params_text(r.params) or "–"] for r in rows],
        )
        page.paragraph("Best training CE: the lowest cross-entropy over the whole training "
                       "set in use that the configuration's best trial reached at the end of "
                       "any epoch (the search objective; its weights are that epoch's). A trial "
                       "that diverged after some epochs keeps the best value of those epochs "
                       "and counts as diverged; one that diverged in its first epoch has no "
                       "value (stored as pruned).")
    else:
        page.missing("No configuration to summarise.")
    page.heading("The papers' claims, checked with this run's numbers")
    tables = claims(records, bias, bias_study,
                    f"the Figure 2 net: {net_label}" if net_label else "")
    if len(tables) > 1:
        page.missing(f"The studies ran under {len(tables)} different protocols; each is checked "
                     "on its own and never pooled.")
    for table in tables:
        page.paragraph(f"Runs of {epochs_text(table.epochs)} each. Protocol: {table.protocol}. "
                       f"Studies: {', '.join(table.studies) or 'none'}.", "meta")
        page.table(
            ["Claim", "Paper", "Rule", "This run", "Verdict", "Note"],
            [[c.claim, c.paper, c.rule, c.measured,
              (c.verdict, c.verdict.replace(" ", "-")), c.note] for c in table.checks],
        )
        counted = {v: sum(c.verdict == v for c in table.checks)
                   for v in (AGREES, DISAGREES, NOT_MEASURED)}
        page.paragraph(
            f"{counted[AGREES]} of {len(table.checks)} claims agree with the papers, "
            f"{counted[DISAGREES]} disagree, {counted[NOT_MEASURED]} not measured. Each check "
            "compares the best training CE of configurations run under this protocol, at the "
            "depths it names and no other. A short or small search can disagree simply "
            "because it is short: read the numbers, not only the verdicts.")
    return tables


def table1(page: Page, records: list[StudyRecord], dataset: str) -> None:
    """Table 1 of the papers beside the conv studies; absent when there are none."""
    rows = table1_data(records)
    if not rows:
        return
    page.section("table1", "Table 1: convolutional highway nets against the papers")

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.2%}"

    page.table(
        ["Study", "Net", "Parameters", "Runs", "Best test accuracy", "Mean ± std",
         "Paper (best)", "Paper's net", "Comparable", "Protocol"],
        [[r.study, f"{r.model}, width {r.width}", (f"{r.params:,}", "num"),
          (str(r.runs), "num"), (pct(r.best), "num"),
          (f"{pct(r.mean)} ± {pct(r.std)}" if r.std is not None else pct(r.mean), "num"),
          (pct(r.paper.accuracy) if r.paper else "–", "num"),
          f"{r.paper.net} ({r.paper.source})" if r.paper else "no published number",
          "yes" if r.comparable else "NO: shorter run", r.protocol] for r in rows],
    )
    page.paragraph(
        f"Per study, its top runs: the (up to {TOP}) complete trials with the lowest training "
        "cross-entropy, each with the test accuracy of its stored epoch; best and mean ± "
        "standard deviation over them, the papers' \"best (mean ± std)\" format. The papers "
        "trained each net once per run with the authors' solver for its full length (MNIST: "
        "180,000 iterations; CIFAR: 200,000); a study that trained for fewer iterations, or "
        "on part of the training set, is marked not comparable and its number is a short "
        "run's, not a replication.")
    for p in unmatched_papers(dataset, rows):
        page.missing(f"Paper: {p.net}, {p.accuracy:.2%} ({p.source}): "
                     + ("no study of this net here." if p.model else
                        "its layout is not published, so there is no preset for it."))


def protocol(page: Page) -> None:
    page.section("protocol", "The protocol: what the papers fix, and what they leave open")
    page.table(["Fixed by the papers", "Their value", "Where"],
               [list(row) for row in FIXED_BY_THE_PAPERS])
    page.paragraph("The papers do not state the number of epochs, the batch size, or the "
                   "ranges of the learning rate, momentum and decay. This project's choices, "
                   "which a launch may override (each study records its own; the tables "
                   "above state the protocol of the studies they compare):")
    page.table(["Left open by the papers", "This project's default", "Why"],
               [list(row) for row in OUR_CHOICES])


def figure1(page: Page, records: list[StudyRecord]) -> None:
    page.section("figure1", "Figure 1: optimization of plain and highway networks")
    groups = list(by_protocol(records).items()) or [((), [])]
    for i, (protocol, group) in enumerate(groups):
        if len(groups) > 1:
            page.heading(f"Protocol: {describe(protocol)}")
        data = figure1_data(group)
        epochs = dict(protocol).get("epochs")
        epochs = epochs if isinstance(epochs, int) else None
        tops = [t for p in data.panels for t in (p.plain_top, p.highway_top) if t is not None]
        top_text = (f" Dotted, with a band: the mean and the spread (lowest to highest) of the "
                    f"top {TOP_RUNS} runs of each configuration that has at least {TOP_RUNS} "
                    "complete trials, as in the NeurIPS version (arXiv:1507.06228, Fig. 1, top "
                    "10 of 100 runs; hwsearch launch --trials 100 makes that protocol)."
                    if tops else
                    f" No configuration has {TOP_RUNS} complete trials, so the NeurIPS "
                    "version's mean of the top 10 runs is not drawn.")
        page.figure(
            figures.figure1(data, epochs, group[0].dataset if group else ""),
            "figure1" if i == 0 else f"figure1-{i}",
            f"After {epochs_text(epochs)} of training: training cross-entropy over the whole "
            "training set in use, per epoch (log scale), of the best trial at each depth: "
            "plain (blue) against highway (green), one panel per depth, sharing the y axis. "
            "Curves are the stored per-epoch evaluations; nothing is retrained. Cf. "
            "arXiv:1505.00387, Fig. 1." + top_text + _short_run(epochs),
            f"Figure 1 lacks data: no plain or highway study has a complete trial "
            f"({len(data.panels)} depths found).")
        for p in data.panels:
            parts = [f"{m} trial {c.trial} of {c.study} (best CE {c.best:.4g}; "
                     f"{_params_text(c.params)})"
                     for m, c in ((PLAIN, p.plain), (HIGHWAY, p.highway)) if c is not None]
            if parts:
                page.paragraph(f"{p.depth} layers: " + "; ".join(parts) + ".")


def _short_run(epochs: int | None) -> str:
    if epochs != 1:
        return ""
    return (" These runs had one epoch: each curve is one point, the first steps of training "
            "only, not the converged nets of the paper's figure; whether highway nets converge "
            "faster is not measured.")


def _notes(page: Page, *notes: str) -> None:
    for note in notes:
        if note:
            page.missing(note)


def figure2(page: Page, inner: InnerWorkings | None, net_label: str, chosen_note: str,
             net_note: str, data_note: str, net_title: str = "") -> None:
    page.section("figure2", "Figure 2: inner workings of a trained highway network")
    _notes(page, chosen_note, net_note)
    if inner is None:
        page.missing("Figure 2 lacks data: no trained highway net with stored weights.")
        return
    _notes(page, data_note)
    data_panels = (
        f"the mean transform-gate output T(x) over {inner.n_samples} random training examples; "
        f"the gate outputs T(x) and the block outputs y = H(x)·T(x) + x·(1 − T(x)) for one "
        f"random training example (#{inner.sample_index}); the examples were drawn with seed "
        f"{inner.seed} (hwsearch report --seed) from the training set the net trained on. "
        "Where gates stay shut the outputs copy their input, so a unit keeps its value down "
        "the layers: the paper's stripes. An extra fifth panel, not in the paper, shows the "
        "block states H(x) of that example"
        if inner.mean_gates is not None else
        "the mean gate outputs, and one example's gate and block outputs (missing: no data)")
    page.figure(
        figures.inner_workings(inner, f"Figure 2: {net_title}" if net_title else ""),
        "figure2",
        f"{net_label}, {len(inner.layers) + 1} layers (layer 1, the plain input layer, has no "
        f"gate). Rows: highway layers; columns: blocks (units). From left: the transform-gate "
        f"biases after training (initialised to {inner.initial_bias:.3g}; red: now lower, "
        f"blue: now higher); {data_panels}. Cf. arXiv:1505.00387, Fig. 2.",
        "Figure 2 lacks data: the net has no highway layers.")


def lesioning(page: Page, lesion: LesionData | None, net_label: str, chosen_note: str,
              net_note: str, data_note: str, net_title: str = "") -> None:
    page.section("lesion", "Lesioning: how much each layer matters")
    if lesion is None:
        _notes(page, chosen_note, net_note, data_note)
        page.missing("The lesioning lacks data: it needs a trained highway net and its "
                     "training data.")
        return
    page.figure(
        figures.lesion(lesion, f"Lesioning: {net_title}" if net_title else ""), "lesion",
        f"{net_label}: training cross-entropy on {lesion.n_samples} training examples with one "
        "highway layer lesioned at a time (its transform gate forced to T = 0, so the layer "
        "only copies its input), against the intact net (dashed). "
        f"{lesion_finding(lesion)} Points on the dashed line mark layers the net does not "
        "need; points far above it, layers it relies on. Cf. arXiv:1507.06228, Fig. 4.",
        "The lesioning lacks data.")


def lesion_finding(lesion: LesionData) -> str:
    """What the lesions show, as the data say it: the layer whose lesion raises the
    cross-entropy most, or that none raises it."""
    worst = max(range(len(lesion.layers)), key=lambda i: lesion.losses[i])
    raised = sum(loss > lesion.unlesioned for loss in lesion.losses)
    if raised == 0:
        return (f"No lesion raises the cross-entropy (intact {lesion.unlesioned:.4g}; every "
                f"lesioned net is at or below it, the highest {lesion.losses[worst]:.4g} at "
                f"layer {lesion.layers[worst]}): this net relies on no single layer.")
    return (f"Lesioning layer {lesion.layers[worst]} hurts most (CE "
            f"{lesion.losses[worst]:.4g} vs {lesion.unlesioned:.4g}); {raised} of "
            f"{len(lesion.layers)} lesions raise the cross-entropy.")


def diagnostics(page: Page, records: list[StudyRecord], study: str | None) -> None:
    title = "Search diagnostics" + (f": {study}" if study else "")
    page.section("diagnostics", title)
    if not records:
        page.missing("No study to diagnose.")
        return
    page.paragraph("Per study: the best training CE of each trial against each hyperparameter "
                   "(log x for log-uniform ones; trials that diverged in their first epoch as "
                   "red crosses at the top), "
                   "Optuna's hyperparameter importances (fANOVA, or PED-ANOVA where scikit-learn "
                   "is not installed), and the empirical CDF of the complete trials' final "
                   "(last-epoch) training CE.")
    for i, r in enumerate(records):
        c = count_trials(r.trials)
        page.heading(f"{r.name} ({r.label})")
        page.paragraph(f"{len(r.trials)} trials: {c.complete} complete, {c.diverged} diverged "
                       f"({c.pruned} in their first epoch: pruned, no value), {c.failed} "
                       f"failed, {c.running} running or waiting; best training CE "
                       f"{_fmt(c.best)}.")
        key = f"{i}-" + re.sub(r"[^A-Za-z0-9_-]", "-", r.name)
        slices = figures.slices(slice_data(r.trials))
        if slices is None:
            page.missing(f"{r.name}: no finished trial to plot against its hyperparameters.")
        else:
            page.raw(page.figure_html(slices, f"slices-{key}"))
        imp = importance_data(r.trials)
        imp_fig, ecdf_fig = figures.importances(imp), figures.ecdf(ecdf_data(r.trials))
        cells = [
            page.figure_html(imp_fig, f"importance-{key}") if imp_fig is not None
            else f'<p class="missing">No hyperparameter importances: {html.escape(imp.note)}.</p>',
            page.figure_html(ecdf_fig, f"ecdf-{key}") if ecdf_fig is not None
            else '<p class="missing">No spread of outcomes: no complete trial.</p>',
        ]
        page.row(cells)

