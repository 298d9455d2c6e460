"""The engine of a pack of conv trials: one grouped-conv program, each trial its own solver.

Every trial keeps its own rate, momentum and weight decay, and the pack applies the recipe's
rules to all (Nesterov or plain momentum, biases at twice the rate and undecayed, the head's
weights decayed ten times as much, the multistep rate at fixed iterations). Per trial the update
is torch's SGD, written out on (K, ·) views of the stacked parameters:
``g ← g + wd·p; b ← μb + g; p ← p − lr·(g + μb)`` (Nesterov) or ``p ← p − lr·b``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from hwsearch.models.packed_conv import PackedConvNet

from .recipe import Recipe

EVAL_IMAGES = 2048  # images × trials per evaluation chunk: conv maps are large


class PackedConvEngine:
    def __init__(
        self,
        pack: PackedConvNet,
        recipe: Recipe,
        lrs: Sequence[float],
        momenta: Sequence[float],
        weight_decays: Sequence[float],
        lr_decays: Sequence[float],
    ) -> None:
        self.pack, self.k, self.recipe = pack, pack.k, recipe
        self.params = pack.ordered_parameters()
        device, dtype = self.params[0].device, self.params[0].dtype

        def column(values: Sequence[float]) -> torch.Tensor:
            return torch.tensor(list(values), device=device, dtype=dtype).view(-1, 1)

        self.lr0, self.momentum = column(lrs), column(momenta)
        self.decay, self.wd = column(lr_decays), column(weight_decays)
        self.mults = pack.multipliers(recipe.bias_lr_mult, recipe.head_decay_mult)
        self.bufs = [torch.zeros_like(p) for p in self.params]
        self.best = [p.detach().clone() for p in self.params]
        self._steps = 0

    def _factor(self, step: int, exponent: float) -> torch.Tensor:
        if self.recipe.multistep:
            return torch.full_like(self.lr0, self.recipe.lr_factor(step, exponent, 1.0))
        return self.decay**exponent

    def lr(self, exponent: float) -> torch.Tensor:
        return (self.lr0 * self._factor(max(0, self._steps - 1), exponent)).view(-1)

    def loss(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.pack(xb)  # (K, B, outputs)
        losses = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)  # (K,)
        return losses, (logits.detach().argmax(2) == yb).sum(1)

    def step(self, xb: torch.Tensor, yb: torch.Tensor, exponent: float):
        self.pack.train()
        losses, correct = self.loss(xb, yb)
        # Each trial's loss depends on its own groups only: one backward, K own gradients.
        grads = torch.autograd.grad(losses.sum(), self.params)
        lr = self.lr0 * self._factor(self._steps, exponent)  # (K, 1)
        self._steps += 1
        with torch.no_grad():
            for p, buf, g, (lr_mult, decay_mult) in zip(
                self.params, self.bufs, grads, self.mults, strict=True
            ):
                pv, bv, gv = p.view(self.k, -1), buf.view(self.k, -1), g.view(self.k, -1)
                if decay_mult:
                    gv = gv + (self.wd * decay_mult) * pv
                bv.mul_(self.momentum).add_(gv)
                update = gv + self.momentum * bv if self.recipe.nesterov else bv
                pv.sub_((lr * lr_mult) * update)
        return losses.detach(), correct

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.pack.eval()
        loss = torch.zeros(self.k, device=y.device, dtype=torch.float64)
        correct = torch.zeros(self.k, device=y.device, dtype=torch.float64)
        chunk = max(1, EVAL_IMAGES // self.k)
        for i in range(0, len(y), chunk):
            yb = y[i : i + chunk]
            xb = x[i : i + chunk].expand(self.k, *x[i : i + chunk].shape)  # shared, no copy
            logits = self.pack(xb)  # (K, n, outputs)
            ce = F.cross_entropy(logits.transpose(1, 2), yb.expand(self.k, -1), reduction="none")
            loss += ce.double().sum(1)
            correct += (logits.argmax(2) == yb).sum(1)
        self.pack.train()
        return loss / len(y), correct / len(y)

    @torch.no_grad()
    def snapshot(self, improved: torch.Tensor) -> None:
        keep = improved.view(-1, 1)
        for p, b in zip(self.params, self.best, strict=True):
            b.view(self.k, -1).copy_(torch.where(keep, p.view(self.k, -1), b.view(self.k, -1)))

    @torch.no_grad()
    def restore_best(self) -> None:
        for p, b in zip(self.params, self.best, strict=True):
            p.copy_(b)

    @torch.no_grad()
    def freeze(self, index: int) -> None:
        self.lr0[index] = 0.0
        for p, buf in zip(self.params, self.bufs, strict=True):
            p.view(self.k, -1)[index].zero_()
            buf.view(self.k, -1)[index].zero_()

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return self.pack.trial_state_dict(index, self.best)
