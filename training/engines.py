"""Two ways to take one SGD step for K trials, behind one interface the training loop drives.

:class:`SingleEngine` is the textbook path (an ``nn.Module`` and ``torch.optim.SGD``).
:class:`PackedEngine` stacks K nets and updates them with every trial's own learning rate and
momentum in a handful of fused ops. Given the same seeds they compute the same numbers; the tests
hold them to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from hwsearch.compat import foreach_sgd_momentum_
from hwsearch.models.packed import PackedFCNet

from .fc_step import PackedFCStep
from .recipe import SGD, Recipe, param_groups


class Engine(Protocol):
    k: int

    def step(
        self, xb: torch.Tensor, yb: torch.Tensor, exponent: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on a (K, B, ...) batch at ``lr = lr0 · decay**exponent``; returns each
        trial's mean loss and number correct, (K,) each, left on the device."""
        ...

    def lr(self, exponent: float) -> torch.Tensor: ...

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each trial's mean cross-entropy and accuracy on a shared (N, ...) set, (K,) each,
        in float64 on the device: the current weights, in eval mode, batched large."""
        ...

    def snapshot(self, improved: torch.Tensor) -> None:
        """Keep the current weights of the trials where ``improved`` (a (K,) bool tensor) is
        true as their best; :meth:`trial_state_dict` returns those."""
        ...

    def restore_best(self) -> None:
        """Put each trial's best weights (its last snapshot) back in place of the current ones,
        once training is over: the test set is then measured on the stored model."""
        ...

    def freeze(self, index: int) -> None:
        """Stop trial ``index`` (it diverged) without disturbing the others."""
        ...

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Trial ``index``'s best weights (the last snapshot), on the CPU."""
        ...


EVAL_CHUNK = 4096  # examples per evaluation batch: large, as no gradients are kept
# A pack's evaluation batch: its (K, 2w, n) maps then stay in a core's cache.
FC_EVAL_CHUNK = 512


def _as_tensor(values: Sequence[float], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(list(values), device=device, dtype=dtype)


class SingleEngine:
    """``torch.optim.SGD`` as the recipe sets it up: the FC nets' plain momentum, or the conv
    definitions' Nesterov momentum, weight decay, per-layer multipliers and multistep rate."""

    k = 1

    def __init__(
        self, model: nn.Module, lr: float, momentum: float, lr_decay: float, *,
        recipe: Recipe = SGD, weight_decay: float = 0.0, eval_chunk: int = EVAL_CHUNK,
    ) -> None:
        self.model, self.lr0, self.decay, self.recipe = model, lr, lr_decay, recipe
        self.eval_chunk = eval_chunk
        self.optimizer = torch.optim.SGD(
            param_groups(model, recipe, weight_decay), lr=lr, momentum=momentum,
            nesterov=recipe.nesterov and momentum > 0,
        )
        self._best: dict[str, torch.Tensor] | None = None
        self._steps = 0  # taken so far: the multistep schedule counts iterations

    def lr(self, exponent: float) -> torch.Tensor:
        factor = self.recipe.lr_factor(max(0, self._steps - 1), exponent, self.decay)
        return torch.tensor([self.lr0 * factor], dtype=torch.float64)

    def step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        factor = self.recipe.lr_factor(self._steps, exponent, self.decay)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr0 * factor * group["lr_mult"]
        self._steps += 1
        logits = self.model(xb[0])
        loss = F.cross_entropy(logits, yb[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct = (logits.detach().argmax(1) == yb[0]).sum()
        return loss.detach().reshape(1), correct.reshape(1)

    @torch.no_grad()
    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        chunk = chunk or self.eval_chunk
        self.model.eval()
        loss = torch.zeros((), device=y.device, dtype=torch.float64)
        correct = torch.zeros((), device=y.device, dtype=torch.float64)
        for i in range(0, len(y), chunk):
            logits = self.model(x[i : i + chunk])
            loss += F.cross_entropy(logits.double(), y[i : i + chunk], reduction="sum")
            correct += (logits.argmax(1) == y[i : i + chunk]).sum()
        self.model.train()
        return (loss / len(y)).reshape(1), (correct / len(y)).reshape(1)

    @torch.no_grad()
    def snapshot(self, improved: torch.Tensor) -> None:
        if bool(improved[0]):
            self._best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @torch.no_grad()
    def restore_best(self) -> None:
        if self._best is not None:
            self.model.load_state_dict(self._best)

    def freeze(self, index: int) -> None:
        pass  # a single run simply stops

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        best = self._best if self._best is not None else self.model.state_dict()
        return {k: v.detach().cpu().clone() for k, v in best.items()}


class PackedEngine:
    """SGD with momentum, ``buf = μ·buf + g; p −= lr·buf`` (torch's convention), per trial."""

    def __init__(
        self,
        pack: PackedFCNet,
        lrs: Sequence[float],
        momenta: Sequence[float],
        lr_decays: Sequence[float],
    ) -> None:
        self.pack, self.k = pack, pack.k
        self.params = [p for p in pack.parameters()]
        device, dtype = self.params[0].device, self.params[0].dtype
        self.lr0 = _as_tensor(lrs, device, dtype)
        self.decay = _as_tensor(lr_decays, device, dtype)
        self.momentum = _as_tensor(momenta, device, dtype)
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.best = [p.detach().clone() for p in self.params]  # each trial's best epoch
        # Where the trial axis sits in each parameter: 0, or 1 for layer-major stacks.
        self._trial_axis = [1 if p.dim() == 4 else 0 for p in self.params]
        self._momentum_views = [self._view(self.momentum, i) for i in range(len(self.params))]
        self._step = PackedFCStep(pack, self.bufs, self.momentum)

    def _view(self, per_trial: torch.Tensor, i: int) -> torch.Tensor:
        shape = [1] * self.params[i].dim()
        shape[self._trial_axis[i]] = self.k
        return per_trial.view(shape)

    def lr(self, exponent: float) -> torch.Tensor:
        return self.lr0 * self.decay**exponent

    def step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        # Each trial's loss depends on its own slices only, so each gets exactly its own
        # gradient; a NaN in one trial stays in that trial's slices.
        with torch.no_grad():
            return self._step(xb.flatten(2), yb, self.lr(exponent))

    def autograd_step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        """:meth:`step` as autograd computes it, on the pack's own forward: what
        ``torch.compile`` traces (the hand-written step writes into buffers it keeps, which
        dynamo traces only in pieces)."""
        logits = self.pack(xb.flatten(2))  # (K, B, classes)
        losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)  # (K,)
        correct = (logits.detach().argmax(2) == yb).sum(1)
        grads = torch.autograd.grad(losses.sum(), self.params)
        lr = self.lr(exponent)
        with torch.no_grad():
            lrs = [self._view(lr, i) for i in range(len(self.params))]
            foreach_sgd_momentum_(self.params, self.bufs, grads, self._momentum_views, lrs)
        return losses.detach(), correct

    @torch.no_grad()
    def evaluate(
        self, x: torch.Tensor, y: torch.Tensor, chunk: int = FC_EVAL_CHUNK
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loss = torch.zeros(self.k, device=y.device, dtype=torch.float64)
        correct = torch.zeros(self.k, device=y.device, dtype=torch.float64)
        for rows, logits in self.pack.shared_logits(x.flatten(1), chunk):  # (K, n, classes)
            yb = y[rows]
            ce = F.cross_entropy(logits.transpose(1, 2), yb.expand(self.k, -1), reduction="none")
            loss += ce.double().sum(1)
            correct += (logits.argmax(2) == yb).sum(1)
        return loss / len(y), correct / len(y)

    @torch.no_grad()
    def snapshot(self, improved: torch.Tensor) -> None:
        for i, (p, b) in enumerate(zip(self.params, self.best, strict=True)):
            b.copy_(torch.where(self._view(improved, i), p, b))

    @torch.no_grad()
    def restore_best(self) -> None:
        for p, b in zip(self.params, self.best, strict=True):
            p.copy_(b)

    @torch.no_grad()
    def freeze(self, index: int) -> None:
        self.lr0[index] = 0.0
        for p, buf, axis in zip(self.params, self.bufs, self._trial_axis, strict=True):
            p.select(axis, index).zero_()  # finite again, so no NaN/inf work lingers
            buf.select(axis, index).zero_()

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return self.pack.trial_state_dict(index, self.best)
