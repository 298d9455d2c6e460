"""The numbers behind every figure, as plain data: no plotting, no storage, no files.

Each function is pure (trials or a net and its inputs in, NamedTuples of lists and numpy arrays
out), so the science can be tested on hand-built values, and the figures only draw.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from hwsearch.models.fc import FCNet
from hwsearch.storage.records import history
from hwsearch.training import HIGHWAY, PLAIN

from .studies import StudyRecord, best_trial, complete_trials, in_memory_study

PARAM_ORDER = ("lr", "momentum", "lr_decay", "activation", "gate_bias")
MAX_SAMPLES = 10_000  # the papers' analyses use (up to) this many training examples


# --- Figure 1: optimization ------------------------------------------------------------------


class Curve(NamedTuple):
    """One trial's training cross-entropy per epoch."""

    study: str
    trial: int
    epochs: list[int]
    losses: list[float]
    best: float
    params: dict[str, Any]


class TopRuns(NamedTuple):
    """The NeurIPS version's Figure 1 (arXiv:1507.06228): the mean, and the spread (lowest to
    highest), of the training CE of the top runs of a configuration, epoch by epoch."""

    n: int  # runs averaged
    of: int  # complete trials they were the best of
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]


class DepthPanel(NamedTuple):
    depth: int
    plain: Curve | None
    highway: Curve | None
    plain_top: TopRuns | None = None
    highway_top: TopRuns | None = None


class Figure1Data(NamedTuple):
    panels: list[DepthPanel]


TOP_RUNS = 10  # the NeurIPS version averaged the top 10 of 100 runs per configuration


def training_curve(trial: FrozenTrial) -> tuple[list[int], list[float]]:
    """Epochs and training CE, from the stored history (else the intermediate values)."""
    rows = history(trial)
    if rows:
        return [int(r["epoch"]) for r in rows], [float(r["train_loss"]) for r in rows]
    steps = sorted(trial.intermediate_values.items())
    return [int(s) for s, _ in steps], [float(v) for _, v in steps]


def final_loss(trial: FrozenTrial) -> float | None:
    """The last epoch's training CE (what the run ended with, not its best)."""
    _, losses = training_curve(trial)
    if losses:
        return losses[-1]
    return float(trial.value) if trial.value is not None else None


def curve_of(study: str, trial: FrozenTrial) -> Curve:
    epochs, losses = training_curve(trial)
    return Curve(study, trial.number, epochs, losses, float(trial.value or math.nan),
                 dict(trial.params))


def top_runs(
    trials: Sequence[tuple[StudyRecord, FrozenTrial]], n: int = TOP_RUNS
) -> TopRuns | None:
    """Mean and spread of the ``n`` best complete trials' curves (each read whole from its
    study); None with fewer than ``n`` complete trials."""
    done = sorted(((r, t) for r, t in trials if t.state == TrialState.COMPLETE
                   and t.value is not None), key=lambda rt: float(rt[1].value))  # type: ignore[arg-type]
    if len(done) < n:
        return None
    curves = [dict(zip(*training_curve(r.fetch(t)), strict=True)) for r, t in done[:n]]
    epochs = sorted({e for c in curves for e in c})
    at = [[c[e] for c in curves if e in c] for e in epochs]
    return TopRuns(n, len(done), epochs, [float(np.mean(v)) for v in at],
                   [min(v) for v in at], [max(v) for v in at])


def figure1_data(records: Sequence[StudyRecord]) -> Figure1Data:
    """Per depth, the best trial of each of plain and highway (over the given studies of that
    pair, which share one protocol), and the top runs' mean and spread where a pair has at
    least :data:`TOP_RUNS` complete trials."""
    best: dict[tuple[str, int], Curve] = {}
    trials: dict[tuple[str, int], list[tuple[StudyRecord, FrozenTrial]]] = {}
    depths: set[int] = set()
    for record in records:
        if not record.in_figure1:
            continue
        depths.add(record.depth)
        key = (record.model, record.depth)
        trials.setdefault(key, []).extend((record, t) for t in record.trials)
        trial = best_trial(record.trials)
        if trial is None:
            continue
        if key not in best or float(trial.value) < best[key].best:  # type: ignore[arg-type]
            best[key] = curve_of(record.name, record.fetch(trial))
    return Figure1Data([
        DepthPanel(d, best.get((PLAIN, d)), best.get((HIGHWAY, d)),
                   top_runs(trials.get((PLAIN, d), [])),
                   top_runs(trials.get((HIGHWAY, d), [])))
        for d in sorted(depths)
    ])


# --- Figure 2: inner workings of a trained highway net ---------------------------------------


class InnerWorkings(NamedTuple):
    """Per highway layer (rows) and block (columns); activations are None without data.

    arXiv:1505.00387, Sec. 4.1 and Fig. 2: "the bias of the transform gates, the mean
    activity over all training samples, and the activity for a single random sample" of the
    transform gates, and of the block outputs, where "most of the outputs stay constant over
    many layers forming a pattern of stripes". A block's output is
    ``y = H(x)·T(x) + x·(1 − T(x))`` (eq. 3), not its state H(x), shown apart as an extra.
    """

    layers: list[int]  # the highway layers' numbers in the net (layer 1 is the plain input layer)
    biases: np.ndarray  # (L, W) transform-gate biases
    initial_bias: float
    mean_gates: np.ndarray | None  # (L, W) mean T(x) over n_samples random training examples
    sample_gates: np.ndarray | None  # (L, W) T(x) for one random training example
    sample_outputs: np.ndarray | None  # (L, W) block outputs y for that example
    sample_states: np.ndarray | None  # (L, W) block states H(x) for that example (extra)
    n_samples: int
    sample_index: int  # the single example's index in the training set
    seed: int  # drew the examples (shown with the figure, so it can be redrawn)


def highway_layer_numbers(model: FCNet) -> list[int]:
    return list(range(2, len(model.layers) + 2))


def gate_biases(model: FCNet) -> np.ndarray:
    """Transform-gate biases as a (layers, blocks) array."""
    if not len(model.layers):
        return np.zeros((0, model.config.width))
    return torch.stack([layer.t.bias.detach().cpu() for layer in model.layers]).double().numpy()


def random_examples(
    n_in_use: int, seed: int, n: int = MAX_SAMPLES
) -> tuple[torch.Tensor, int]:
    """``n`` random training examples (indices, without replacement) of the ``n_in_use`` a
    trial trained on, and one more random example's index: seeded, so the figure can be
    redrawn exactly."""
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(n_in_use, generator=gen)[: min(n, n_in_use)]
    one = int(torch.randint(n_in_use, (1,), generator=gen))
    return chosen, one


@torch.no_grad()
def inner_workings_data(
    model: FCNet, x: torch.Tensor | None, sample: torch.Tensor | None = None, *,
    sample_index: int = 0, seed: int = 0, batch_size: int = 1000,
) -> InnerWorkings:
    """The paper's Figure 2 panels: ``x`` (N, ...) random training inputs for the mean gate
    activity, ``sample`` (1, ...) the single random example (training example
    ``sample_index``), both on the model's device."""
    if not model.config.highway:
        raise ValueError("inner workings exist only for highway nets")
    biases = gate_biases(model)
    layers = highway_layer_numbers(model)
    if x is None or len(x) == 0 or sample is None:
        return InnerWorkings(layers, biases, model.config.gate_bias, None, None, None, None, 0,
                             sample_index, seed)
    total = torch.zeros(biases.shape, dtype=torch.float64)
    for start in range(0, len(x), batch_size):
        total += model.internals(x[start : start + batch_size]).gates.double().sum(dim=1).cpu()
    one = model.internals(sample[:1])
    return InnerWorkings(
        layers,
        biases,
        model.config.gate_bias,
        (total / len(x)).numpy(),
        one.gates[:, 0].double().cpu().numpy(),
        one.outputs[:, 0].double().cpu().numpy(),
        one.states[:, 0].double().cpu().numpy(),
        len(x),
        sample_index,
        seed,
    )


class BiasChange(NamedTuple):
    """How training moved the transform-gate biases away from their common initial value."""

    initial: float
    final: np.ndarray  # flat
    decreased: int
    fraction_decreased: float
    mean_change: float


def bias_change_data(model: FCNet) -> BiasChange:
    final = gate_biases(model).ravel()
    initial = float(model.config.gate_bias)
    if final.size == 0:
        return BiasChange(initial, final, 0, math.nan, math.nan)
    decreased = int((final < initial).sum())
    return BiasChange(initial, final, decreased, decreased / final.size,
                      float((final - initial).mean()))


# --- Lesioning (arXiv:1507.06228, Fig. 4) ------------------------------------------------------


class LesionData(NamedTuple):
    layers: list[int]  # the lesioned highway layer's number in the net
    losses: list[float]  # training CE with that layer's gate pinned to T = 0
    unlesioned: float
    n_samples: int


@torch.no_grad()
def cross_entropy(
    model: FCNet, x: torch.Tensor, y: torch.Tensor, lesion: Collection[int] = (),
    batch_size: int = 2500,
) -> float:
    """Mean cross-entropy of ``model`` on (x, y); ``lesion`` holds indices into model.layers."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size], lesion=lesion)
        total += float(F.cross_entropy(logits.double(), y[start : start + batch_size],
                                       reduction="sum"))
    return total / len(x)


def lesion_data(model: FCNet, x: torch.Tensor, y: torch.Tensor) -> LesionData:
    """Training CE with each highway layer lesioned in turn (one at a time), and without."""
    if not model.config.highway:
        raise ValueError("only highway layers can be lesioned")
    if len(x) == 0:
        raise ValueError("lesioning needs at least one example")
    losses = [cross_entropy(model, x, y, lesion={i}) for i in range(len(model.layers))]
    return LesionData(highway_layer_numbers(model), losses, cross_entropy(model, x, y), len(x))


# --- Search diagnostics ------------------------------------------------------------------------


class SliceParam(NamedTuple):
    """One hyperparameter against the objective: one point per complete trial."""

    name: str
    log: bool
    categorical: bool
    x: list[Any]
    y: list[float]
    trials: list[int]
    diverged_x: list[Any]  # this parameter's value in each diverged (pruned) trial


class SliceData(NamedTuple):
    params: list[SliceParam]
    complete: int
    diverged: int


def _param_names(trials: Sequence[FrozenTrial]) -> list[str]:
    names = {n for t in trials for n in t.params}
    return [n for n in PARAM_ORDER if n in names] + sorted(names - set(PARAM_ORDER))


def slice_data(trials: Sequence[FrozenTrial]) -> SliceData:
    """Best training CE of each complete trial against each of its hyperparameters."""
    done = complete_trials(list(trials))
    diverged = [t for t in trials if t.state == TrialState.PRUNED]
    params = []
    for name in _param_names([*done, *diverged]):
        dist = next(t.distributions[name] for t in [*done, *diverged] if name in t.distributions)
        with_param = [t for t in done if name in t.params]
        params.append(SliceParam(
            name,
            isinstance(dist, FloatDistribution | IntDistribution) and dist.log,
            isinstance(dist, CategoricalDistribution),
            [t.params[name] for t in with_param],
            [float(t.value) for t in with_param],  # type: ignore[arg-type]
            [t.number for t in with_param],
            [t.params[name] for t in diverged if name in t.params],
        ))
    return SliceData(params, len(done), len(diverged))


# fANOVA's marginalisation is pure Python over every leaf of every tree, and Optuna's trees
# grow a leaf per trial: 1,000 trials took 94 s and 10,000 would take hours (this 2-core machine,
# loaded). So the importances rest on a seeded random sample of at most this many complete
# trials, with trees at most this deep (256 leaves): a few seconds, whatever the study's size.
IMPORTANCE_SAMPLE = 1000
IMPORTANCE_DEPTH = 8


class Importances(NamedTuple):
    names: list[str]  # most important first
    values: list[float]  # normalised importances, summing to 1
    method: str  # the evaluator used
    trials: int  # complete trials they rest on
    note: str  # why there are none, when there are none
    complete: int = 0  # complete trials in the study (more than ``trials`` when sampled)


def _evaluator(seed: int) -> tuple[Any, str]:
    """fANOVA (Optuna's default) when scikit-learn is there, else PED-ANOVA, which needs none."""
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(
            seed=seed, max_depth=IMPORTANCE_DEPTH)
        return evaluator, "fANOVA"
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"


def importance_data(trials: Sequence[FrozenTrial], seed: int = 0) -> Importances:
    """Optuna's hyperparameter importances over the complete trials (seeded: repeatable)."""
    done = complete_trials(list(trials))
    if len(done) < 2:
        return Importances([], [], "", len(done),
                           f"needs at least 2 complete trials; this study has {len(done)}")
    if len({float(t.value) for t in done}) < 2:  # type: ignore[arg-type]
        return Importances([], [], "", len(done), "every complete trial has the same value")
    evaluator, method = _evaluator(seed)
    used = done
    if len(done) > IMPORTANCE_SAMPLE:
        chosen = random.Random(seed).sample(range(len(done)), IMPORTANCE_SAMPLE)
        used = [done[i] for i in sorted(chosen)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            found = optuna.importance.get_param_importances(in_memory_study(used),
                                                            evaluator=evaluator)
    except (ValueError, RuntimeError, ZeroDivisionError) as e:
        return Importances([], [], method, len(used),
                           f"Optuna's {method} could not compute them: {e}", len(done))
    if not found:
        return Importances([], [], method, len(used),
                           "no hyperparameter varies across the complete trials", len(done))
    return Importances(list(found), [float(v) for v in found.values()], method, len(used), "",
                       len(done))


class Ecdf(NamedTuple):
    """Empirical CDF of the complete trials' final training CE."""

    values: list[float]  # sorted ascending
    fractions: list[float]  # (i + 1) / n: the share of complete trials at or below values[i]
    diverged: int
    failed: int


def ecdf_data(trials: Sequence[FrozenTrial]) -> Ecdf:
    finals = sorted(v for t in complete_trials(list(trials)) if (v := final_loss(t)) is not None)
    n = len(finals)
    return Ecdf(
        finals,
        [(i + 1) / n for i in range(n)],
        sum(t.state == TrialState.PRUNED for t in trials),
        sum(t.state == TrialState.FAIL for t in trials),
    )


class Examples(NamedTuple):
    """The training examples the data-dependent panels use: random, seeded, from the set a
    trial trained on (its ``limit_train`` subset)."""

    x: torch.Tensor  # (N, ...) at most MAX_SAMPLES random examples
    y: torch.Tensor
    sample: torch.Tensor  # (1, ...) one more random example
    sample_index: int  # its index in the training set
    seed: int


def training_examples(
    x: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int = 0,
    max_samples: int = MAX_SAMPLES,
) -> Examples:
    """Random examples of the first ``limit`` (all when None) of ``x, y``; see
    :func:`random_examples`."""
    in_use = min(len(y), limit if limit is not None else len(y))
    chosen, one = random_examples(in_use, seed, max_samples)
    return Examples(x[chosen], y[chosen], x[one : one + 1], one, seed)
