"""The numbers behind the figures drawn from a trained net (Figure 2, the gate biases' change,
the lesioning), as plain data: no plotting, no storage, no files.

Each function is pure (a net and its inputs in, NamedTuples of lists and numpy arrays out), so
the science can be tested on hand-built nets, and the figures only draw.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from hwsearch.models.fc import FCNet

MAX_SAMPLES = 10_000  # the papers' analyses use (up to) this many training examples


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
    losses, whole = _lesioned_cross_entropies(model, x, y)
    return LesionData(highway_layer_numbers(model), losses, whole, len(x))


def _lesioned_cross_entropies(
    model: FCNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2500,
    workers: int | None = None,
) -> tuple[list[float], float]:
    """What :func:`cross_entropy` gives with each layer lesioned in turn, and without, in half
    the work: a lesioned layer (T = 0) passes its input through unchanged, so lesion ``i``
    starts from the unlesioned net's input to layer ``i`` and runs only the layers after it
    (the same batches and operations, so the same numbers).

    The batches run on ``workers`` threads (default: the cores this process may use over
    torch's threads per operation, at most one per batch; the report runs torch on one).
    torch releases the GIL inside each operation, so the threads use the cores in parallel;
    each batch's sums are added in batch order, so the result does not depend on how many
    threads ran."""
    n = len(model.layers)
    starts = list(range(0, len(x), batch_size))

    def ce(h: torch.Tensor, yb: torch.Tensor) -> float:
        return float(F.cross_entropy(model.classifier(h).double(), yb, reduction="sum"))

    def one_batch(start: int) -> tuple[list[float], float]:
        with torch.no_grad():  # grad mode is per thread
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            inputs = [model.first(xb.flatten(1))]
            for layer in model.layers:
                inputs.append(layer(inputs[-1]))
            lesioned = []
            for i in range(n):
                h = inputs[i]  # layer i lesioned: its output is its input
                for layer in model.layers[i + 1 :]:
                    h = layer(h)
                lesioned.append(ce(h, yb))
            return lesioned, ce(inputs[-1], yb)

    threads = min(workers or usable_cores() // torch.get_num_threads(), len(starts))
    if threads <= 1:
        parts = [one_batch(start) for start in starts]
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lesion") as pool:
            parts = list(pool.map(one_batch, starts))
    totals, whole = [0.0] * n, 0.0
    for lesioned, unlesioned in parts:  # batch order, as one loop over the batches would add
        whole += unlesioned
        for i, value in enumerate(lesioned):
            totals[i] += value
    return [t / len(x) for t in totals], whole / len(x)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
