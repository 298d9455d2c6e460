"""The training loop every run goes through, single or packed.

Per trial: its own shuffling stream, its own learning-rate schedule
``lr_t = lr_0 · rate^(t / decay_steps)`` (floored exponent when staircase), and its own record of
every epoch. A trial whose epoch loss is NaN or inf is marked diverged at that epoch and frozen;
its pack-mates go on. So is a trial whose loss explodes past ``DIVERGENCE_FACTOR · ln(classes)``
(a hundred times chance level): with tanh or sigmoid an absurd learning rate saturates every
unit and the loss stays finite, but no such run is coming back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .data import Dataset
from .engines import Engine


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float  # mean training cross-entropy over the epoch's steps
    train_accuracy: float
    test_accuracy: float | None
    lr: float  # at the epoch's last step
    seconds: float  # wall time of the epoch (the whole pack's, when packed)


@dataclass
class TrialResult:
    """A trial's history; ``best_train_loss`` is the search objective (lowest epoch loss)."""

    epochs: list[EpochRecord] = field(default_factory=list)
    diverged_epoch: int | None = None
    state_dict: dict[str, torch.Tensor] | None = None

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


EpochCallback = Callable[[int, Sequence[TrialResult]], None]


def fit(
    engine: Engine,
    data: Dataset,
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    decay_steps: int = 0,
    staircase: bool = False,
    eval_test: bool = True,
    on_epoch: EpochCallback | None = None,
) -> list[TrialResult]:
    """Train ``engine``'s K trials on ``data`` (already on the engine's device)."""
    k, n = engine.k, len(data.y_train)
    if len(seeds) != k:
        raise ValueError(f"{len(seeds)} seeds for a pack of {k}")
    batch_size = min(batch_size, n)
    steps_per_epoch = n // batch_size  # the ragged tail is dropped so packs keep one shape
    decay_steps = decay_steps or steps_per_epoch
    gens = [shuffle_generator(s) for s in seeds]
    device = data.y_train.device
    results = [TrialResult() for _ in range(k)]
    alive = list(range(k))
    step = 0

    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
        order = order[:, : steps_per_epoch * batch_size].view(k, steps_per_epoch, batch_size)
        loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
        correct = torch.zeros(k, device=device, dtype=torch.int64)
        for s in range(steps_per_epoch):
            exponent = step // decay_steps if staircase else step / decay_steps
            idx = order[:, s]  # (K, B)
            losses, right = engine.step(data.x_train[idx], data.y_train[idx], exponent)
            loss_sum += losses
            correct += right
            step += 1
        mean_loss = (loss_sum / steps_per_epoch).cpu().tolist()  # one sync per epoch
        accuracy = (correct.double() / (steps_per_epoch * batch_size)).cpu().tolist()
        lr = engine.lr(exponent).cpu().tolist()
        test = engine.evaluate(data.x_test, data.y_test).tolist() if eval_test else [None] * k
        seconds = time.perf_counter() - start
        for i in list(alive):
            if diverged(mean_loss[i], data.num_classes):
                results[i].diverged_epoch = epoch
                alive.remove(i)
                engine.freeze(i)
                continue
            results[i].epochs.append(
                EpochRecord(epoch, mean_loss[i], accuracy[i], test[i], lr[i], seconds)
            )
        if on_epoch is not None:
            on_epoch(epoch, results)
        if not alive:
            break

    for i in alive:
        results[i].state_dict = engine.trial_state_dict(i)
    return results
