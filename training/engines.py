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

from hwsearch.models import PackedFCNet


class Engine(Protocol):
    k: int

    def step(
        self, xb: torch.Tensor, yb: torch.Tensor, exponent: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on a (K, B, ...) batch at ``lr = lr0 · rate**exponent``; returns each
        trial's mean loss and number correct, (K,) each, left on the device."""
        ...

    def lr(self, exponent: float) -> torch.Tensor: ...

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Accuracy of each trial on a shared (N, ...) set, (K,)."""
        ...

    def freeze(self, index: int) -> None:
        """Stop trial ``index`` (it diverged) without disturbing the others."""
        ...

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]: ...


def _as_tensor(values: Sequence[float], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(list(values), device=device, dtype=dtype)


class SingleEngine:
    k = 1

    def __init__(self, model: nn.Module, lr: float, momentum: float, decay_rate: float) -> None:
        self.model, self.lr0, self.rate = model, lr, decay_rate
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        p = next(model.parameters())
        self._device, self._dtype = p.device, p.dtype

    def lr(self, exponent: float) -> torch.Tensor:
        return torch.tensor([self.lr0 * self.rate**exponent], dtype=torch.float64)

    def step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr0 * self.rate**exponent
        logits = self.model(xb[0])
        loss = F.cross_entropy(logits, yb[0])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct = (logits.detach().argmax(1) == yb[0]).sum()
        return loss.detach().reshape(1), correct.reshape(1)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        self.model.eval()
        correct = sum(
            (self.model(x[i : i + chunk]).argmax(1) == y[i : i + chunk]).sum()
            for i in range(0, len(y), chunk)
        )
        self.model.train()
        return (torch.as_tensor(correct, dtype=torch.float64) / len(y)).reshape(1).cpu()

    def freeze(self, index: int) -> None:
        pass  # a single run simply stops

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}


class PackedEngine:
    """SGD with momentum, ``buf = μ·buf + g; p −= lr·buf`` (torch's convention), per trial."""

    def __init__(
        self,
        pack: PackedFCNet,
        lrs: Sequence[float],
        momenta: Sequence[float],
        decay_rates: Sequence[float],
    ) -> None:
        self.pack, self.k = pack, pack.k
        self.params = [p for p in pack.parameters()]
        device, dtype = self.params[0].device, self.params[0].dtype
        self.lr0 = _as_tensor(lrs, device, dtype)
        self.rate = _as_tensor(decay_rates, device, dtype)
        self.momentum = _as_tensor(momenta, device, dtype)
        self.bufs = [torch.zeros_like(p) for p in self.params]
        # Where the trial axis sits in each parameter: 0, or 1 for layer-major stacks.
        self._trial_axis = [1 if p.dim() == 4 else 0 for p in self.params]
        self._momentum_views = [self._view(self.momentum, i) for i in range(len(self.params))]

    def _view(self, per_trial: torch.Tensor, i: int) -> torch.Tensor:
        shape = [1] * self.params[i].dim()
        shape[self._trial_axis[i]] = self.k
        return per_trial.view(shape)

    def lr(self, exponent: float) -> torch.Tensor:
        return self.lr0 * self.rate**exponent

    def loss(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.pack(xb.flatten(2))  # (K, B, classes)
        losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)  # (K,)
        correct = (logits.detach().argmax(2) == yb).sum(1)
        return losses, correct

    def step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        losses, correct = self.loss(xb, yb)
        # Each trial's loss depends on its own slice only, so one backward gives every trial
        # exactly its own gradient; a NaN in one trial stays in that trial's slices.
        grads = torch.autograd.grad(losses.sum(), self.params)
        lr = self.lr(exponent)
        with torch.no_grad():
            torch._foreach_mul_(self.bufs, self._momentum_views)
            torch._foreach_add_(self.bufs, grads)
            steps = torch._foreach_mul(
                self.bufs, [self._view(lr, i) for i in range(len(self.params))]
            )
            torch._foreach_sub_(self.params, steps)
        return losses.detach(), correct

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        correct = torch.zeros(self.k, device=y.device, dtype=torch.float64)
        for i in range(0, len(y), chunk):
            xb = x[i : i + chunk].flatten(1).expand(self.k, -1, -1)  # (K, n, in), no copy
            correct += (self.pack(xb).argmax(2) == y[i : i + chunk]).sum(1)
        return (correct / len(y)).cpu()

    @torch.no_grad()
    def freeze(self, index: int) -> None:
        self.lr0[index] = 0.0
        for p, buf, axis in zip(self.params, self.bufs, self._trial_axis, strict=True):
            p.select(axis, index).zero_()  # finite again, so no NaN/inf work lingers
            buf.select(axis, index).zero_()

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return self.pack.trial_state_dict(index)
