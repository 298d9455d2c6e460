"""The training loop every run goes through, single or packed.

Per trial: its own shuffling stream, its own learning-rate schedule, its own record of every
epoch. The schedule is ``lr_t = lr_0 · lr_decay^(t / T)`` over the run's T steps (with
``staircase``, the exponent moves once per epoch): ``lr_decay`` is the factor by which the rate
has fallen at the end, so its range means the same whatever the number of epochs.

The objective. After every epoch the current weights are evaluated on the whole training set
in use (eval mode, batched large): that cross-entropy is the epoch's ``train_loss``, and a
trial's value is the lowest across epochs, "the best training set error achieved"
(arXiv:1505.00387, Sec. 4.1; the authors' Caffe definitions evaluate the training set in a
"test-on-train" stage). The mean of the minibatch losses seen while the weights changed is
kept as ``running_loss``. The weights of each trial's best epoch are kept, so the stored
model is the one that achieved the value.

Divergence. A trial whose evaluated or running loss is NaN or inf, or explodes past
``DIVERGENCE_FACTOR · ln(classes)`` (a hundred times chance level: with tanh an absurd
learning rate saturates every unit and the loss stays finite, but no such run comes back), is
marked diverged at that epoch and frozen; its pack-mates go on. Its best value and weights are
those of the epochs before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .cifar import PAD, translate_and_mirror
from .data import Dataset
from .engines import Engine


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float  # cross-entropy of the epoch's weights on the whole training set in use
    running_loss: float  # mean of the minibatch losses during the epoch
    train_accuracy: float  # of the epoch's weights on the whole training set in use
    test_accuracy: float | None  # measured after every epoch only if asked (a learning curve)
    lr: float  # at the epoch's last step
    seconds: float  # wall time of the epoch, evaluation included (the whole pack's, if packed)
    eval_seconds: float  # of which evaluating the training and test sets


@dataclass
class TrialResult:
    """A trial's history; ``best_train_loss`` is the search objective."""

    epochs: list[EpochRecord] = field(default_factory=list)
    diverged_epoch: int | None = None
    state_dict: dict[str, torch.Tensor] | None = None  # the best epoch's weights
    best_epoch: int | None = None
    test_accuracy: float | None = None  # of the best epoch's weights, the stored model
    test_seconds: float = 0.0  # the pack's test evaluation at the end (wall, shared)

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None

    @property
    def best_train_loss(self) -> float:
        return min((e.train_loss for e in self.epochs), default=math.inf)

    @property
    def final(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None


def shuffle_generator(seed: int) -> torch.Generator:
    """The data-order stream of a trial; disjoint from its init stream (``2·seed``)."""
    return torch.Generator().manual_seed(2 * seed + 1)


def init_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(2 * seed)


DIVERGENCE_FACTOR = 100.0


def diverged(loss: float, num_classes: int) -> bool:
    return not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * math.log(num_classes)


def _diverged(losses: torch.Tensor, num_classes: int) -> torch.Tensor:
    """:func:`diverged` for a (K,) tensor, on its device."""
    return ~torch.isfinite(losses) | (losses > DIVERGENCE_FACTOR * math.log(num_classes))


EpochCallback = Callable[[int, Sequence[TrialResult]], None]


class RowGather:
    """``source[idx]`` for a (K, B) index of rows, into one buffer reused step after step.

    ``torch.index_select`` copies whole rows; advanced indexing gathers element by element,
    about five times slower on a CPU (a pack of 20 MNIST batches: 2.3 ms against 0.4, a tenth
    of a depth-10 step). The batch is a view of the buffer, valid until the next gather: every
    engine is done with a batch when its step returns (the CUDA graph copies it in)."""

    def __init__(self, source: torch.Tensor, rows: int) -> None:
        self.source = source
        self.buffer = source.new_empty((rows, *source.shape[1:]))

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        flat = torch.index_select(self.source, 0, idx.reshape(-1), out=self.buffer)
        return flat.view(*idx.shape, *self.source.shape[1:])


def _augment_draws(
    gens: Sequence[torch.Generator], shape: torch.Size, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """An epoch's crop offsets (K, steps, B, 2) and mirror flags (K, steps, B) per trial."""
    shifts = torch.stack([torch.randint(0, 2 * PAD + 1, (*shape[1:], 2), generator=g)
                          for g in gens])
    flips = torch.stack([torch.rand(shape[1:], generator=g) < 0.5 for g in gens])
    return shifts.to(device), flips.to(device)


def fit(
    engine: Engine,
    data: Dataset,
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    staircase: bool = False,
    eval_test: bool = True,
    test_every_epoch: bool = False,
    on_epoch: EpochCallback | None = None,
) -> list[TrialResult]:
    """Train ``engine``'s K trials on ``data`` (already on the engine's device).

    The test set is measured once at the end, on each trial's best weights (what is stored
    and reported), unless ``test_every_epoch`` asks for a learning curve: every epoch's
    evaluation of the 10,000 test images cost more than training on a small subset.
    """
    k, n = engine.k, len(data.y_train)
    if len(seeds) != k:
        raise ValueError(f"{len(seeds)} seeds for a pack of {k}")
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size  # the ragged tail is dropped so packs keep one shape
    total_steps = epochs * steps_per_epoch
    gens = [shuffle_generator(s) for s in seeds]
    device = data.y_train.device
    results = [TrialResult() for _ in range(k)]
    alive = list(range(k))
    best = torch.full((k,), math.inf, device=device, dtype=torch.float64)
    live = torch.ones(k, device=device, dtype=torch.bool)
    step = 0
    every = eval_test and test_every_epoch  # else the test set is measured once, at the end
    batches = RowGather(data.x_train, k * batch_size)

    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
        order = order[:, : steps_per_epoch * batch_size].view(k, steps_per_epoch, batch_size)
        if data.augment:  # each trial's own translations and flips, from its own stream
            shifts, flips = _augment_draws(gens, order.shape, device)
        loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
        for s in range(steps_per_epoch):
            exponent = (step // steps_per_epoch) / epochs if staircase else step / total_steps
            idx = order[:, s]  # (K, B)
            xb = batches.gather(idx)
            if data.augment:
                xb = translate_and_mirror(xb, shifts[:, s], flips[:, s])
            losses, _ = engine.step(xb, data.y_train[idx], exponent)
            loss_sum += losses
            step += 1
        evaluating = time.perf_counter()
        train_loss, train_acc = engine.evaluate(data.x_train, data.y_train)
        test_acc = engine.evaluate(data.x_test, data.y_test)[1] if every else None
        # Device-side, before the one host sync: which trials diverged, and the weights of
        # each live trial that improved (a frozen trial's zeroed weights never count).
        running_loss = loss_sum / steps_per_epoch
        blew_up = _diverged(running_loss, data.num_classes) | _diverged(train_loss,
                                                                       data.num_classes)
        improved = (train_loss < best) & live & ~blew_up
        best = torch.where(improved, train_loss, best)
        engine.snapshot(improved)
        stats = torch.stack([
            running_loss, train_loss, train_acc,
            test_acc if test_acc is not None else torch.full_like(train_acc, math.nan),
            engine.lr(exponent).to(device, torch.float64), blew_up.double(), improved.double(),
        ]).cpu().tolist()  # one sync per epoch
        running, evaluated, accuracy, test, lr, blown, better = stats
        now = time.perf_counter()
        for i in list(alive):
            if blown[i]:
                results[i].diverged_epoch = epoch
                alive.remove(i)
                live[i] = False
                engine.freeze(i)
                continue
            results[i].epochs.append(EpochRecord(
                epoch, evaluated[i], running[i], accuracy[i],
                test[i] if every else None, lr[i], now - start, now - evaluating,
            ))
            if better[i]:
                results[i].best_epoch = epoch
        if on_epoch is not None:
            on_epoch(epoch, results)
        if not alive:
            break

    for i, r in enumerate(results):
        if r.epochs:
            r.state_dict = engine.trial_state_dict(i)
    if eval_test:
        _test_the_best(engine, data, results, test_every_epoch)
    return results


def _test_the_best(
    engine: Engine, data: Dataset, results: list[TrialResult], every_epoch: bool
) -> None:
    """Each trial's test accuracy with its best epoch's weights: read from that epoch's record
    when every epoch was measured, else measured now, once for the whole pack."""
    if every_epoch:
        for r in results:
            if r.best_epoch is not None:
                r.test_accuracy = next(e.test_accuracy for e in r.epochs
                                       if e.epoch == r.best_epoch)
        return
    if all(r.best_epoch is None for r in results):
        return
    start = time.perf_counter()
    engine.restore_best()  # training is over: the stored weights take the live ones' place
    accuracy = engine.evaluate(data.x_test, data.y_test)[1].cpu().tolist()
    seconds = time.perf_counter() - start
    for i, r in enumerate(results):
        r.test_seconds = seconds
        if r.best_epoch is not None:
            r.test_accuracy = accuracy[i]
