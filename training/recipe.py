"""Training recipes: how a net is optimised, apart from what it is.

The fully connected experiments (arXiv:1505.00387, Sec. 4.1) use plain SGD with momentum and a
decaying learning rate, all searched: recipe ``sgd``. The convolutional nets come with the
authors' Caffe solvers (``examples/highways/*/*_solver.prototxt``), which fix much more:

* Nesterov momentum 0.9, weight decay 0.001, batch 100;
* a multistep schedule: the rate ×0.1 at fixed iterations (MNIST: 60k and 120k of 180k, from
  0.01; CIFAR: 100k, 150k and 175k of 200k, from 0.025);
* per-layer multipliers in the definitions: every bias learns at twice the rate and is never
  decayed; the linear head's weights decay ten times as much.

The milestones are iterations, as in the solvers, so a run shorter than the authors' is the
first part of theirs (a 3-epoch MNIST run, 1,800 iterations, never reaches the first step),
comparable iteration for iteration with their log, and labelled short in the report.

Caffe's Nesterov step ``v ← μv + lr·g; w ← w − ((1+μ)v − μv_prev)`` is torch's
``b ← μb + g; w ← w − lr(g + μb)`` with ``v = lr·b``: the same while the rate is constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Recipe:
    name: str
    nesterov: bool
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    milestones: tuple[int, ...] = ()  # iterations where lr ×gamma; (): lr_decay (exponential)
    gamma: float = 0.1
    iterations: int = 0  # the length of the authors' run; 0: none fixed
    bias_lr_mult: float = 1.0
    head_decay_mult: float = 1.0

    @property
    def multistep(self) -> bool:
        return bool(self.milestones)

    def lr_factor(self, step: int, exponent: float, lr_decay: float) -> float:
        """The rate at 0-based ``step`` ÷ the initial rate (``exponent``: the fraction of the
        run done, for the exponential schedule)."""
        if self.multistep:
            return self.gamma ** sum(step >= m for m in self.milestones)
        return lr_decay**exponent

    def describe(self) -> str:
        if not self.multistep:
            return (f"{self.name}: SGD with momentum, batch {self.batch_size}, the rate decayed "
                    "exponentially by lr_decay over the run")
        steps = ", ".join(f"{m:,}" for m in self.milestones)
        return (f"{self.name}: {'Nesterov' if self.nesterov else 'SGD'} momentum "
                f"{self.momentum}, lr {self.lr} ×{self.gamma} at iterations {steps} of "
                f"{self.iterations:,}, weight decay {self.weight_decay}, batch "
                f"{self.batch_size}; biases ×{self.bias_lr_mult:g} lr, no decay; head weights "
                f"×{self.head_decay_mult:g} decay")


SGD = Recipe("sgd", nesterov=False, batch_size=128, lr=0.1, momentum=0.9, weight_decay=0.0)
CAFFE_MNIST = Recipe("caffe-mnist", nesterov=True, batch_size=100, lr=0.01, momentum=0.9,
                     weight_decay=0.001, milestones=(60_000, 120_000), iterations=180_000,
                     bias_lr_mult=2.0, head_decay_mult=10.0)
CAFFE_CIFAR = Recipe("caffe-cifar", nesterov=True, batch_size=100, lr=0.025, momentum=0.9,
                     weight_decay=0.001, milestones=(100_000, 150_000, 175_000),
                     iterations=200_000, bias_lr_mult=2.0, head_decay_mult=10.0)
RECIPES = {r.name: r for r in (SGD, CAFFE_MNIST, CAFFE_CIFAR)}


def param_groups(model: nn.Module, recipe: Recipe, weight_decay: float) -> list[dict[str, Any]]:
    """The optimiser's parameter groups, each with its ``lr_mult``: biases at
    ``bias_lr_mult`` and undecayed, the head's weights at ``head_decay_mult`` times the decay."""
    if recipe.bias_lr_mult == 1.0 and recipe.head_decay_mult == 1.0:
        return [{"params": list(model.parameters()), "lr_mult": 1.0,
                 "weight_decay": weight_decay}]
    weights, biases, head = [], [], []
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            biases.append(p)
        elif name.startswith("classifier."):
            head.append(p)
        else:
            weights.append(p)
    return [
        {"params": weights, "lr_mult": 1.0, "weight_decay": weight_decay},
        {"params": biases, "lr_mult": recipe.bias_lr_mult, "weight_decay": 0.0},
        {"params": head, "lr_mult": 1.0, "weight_decay": recipe.head_decay_mult * weight_decay},
    ]
