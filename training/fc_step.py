"""The SGD step of a pack of fully connected nets, written out by hand.

Autograd records every op of a step, allocates every intermediate anew and sums each layer's
gradient after the whole backward pass; on a CPU core, where a pack's matmuls are small, that
bookkeeping costs as much as the arithmetic. This step computes the same numbers with the
reference's own functions (``torch.sigmoid``, ``x + t·(h − x)``, torch's SGD update; tanh
too, except on the CPU, where it is ``2·sigmoid(2z) − 1``: see :func:`inplace_activation`) as a
fixed sequence of ops on buffers, and views of them, made once per batch shape:

* **Layout.** Activations are kept feature-major, ``(K, width, B)``: a highway layer's fused
  ``[H | T]`` matmul then yields H and T as two contiguous blocks per trial, which the
  elementwise kernels run over at full vector width (the row-major slices ``z[..., :w]`` are
  strided). The stored weights keep :class:`PackedFCNet`'s layout; the matmuls read them
  transposed, which BLAS does for free.
* **Backward by hand.** Per highway layer: ``dH = g·T`` through the activation's derivative,
  ``dT = g·(H − h)`` through the sigmoid's, ``dh = g − g·T + W·dz``.
* **Updates** ``buf = μ·buf + g; p −= lr·buf`` per trial: a layer's weights as soon as their
  gradient is known, while it is in cache (the matmul accumulates the gradient into the
  momentum buffer; the layer's input gradient is taken first); the hidden layers' biases all
  at once after the backward pass, three ops where one per layer would be three per layer.

Only summation orders, and on the CPU tanh's rounding, differ from the reference (the tests
hold the two to float64 rounding).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from hwsearch.compat import activation_grad
from hwsearch.models.packed import PackedFCNet, tanh_from_sigmoid_

InPlace = Callable[[torch.Tensor], torch.Tensor]
Grad = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def activation_runs(names: Sequence[str]) -> list[tuple[str, slice]]:
    """Contiguous runs of one activation, (name, trials): every layer applies each run's
    function once."""
    runs, start = [], 0
    for name, group in itertools.groupby(names):
        n = len(list(group))
        runs.append((name, slice(start, start + n)))
        start += n
    return runs


@dataclass
class _Layer:
    """One hidden layer's tensors for a step: parameters, buffers and their views."""

    weight: torch.Tensor  # (K, w, out)
    weight_t: torch.Tensor  # (K, out, w), a view
    bias_t: torch.Tensor  # (K, out, 1), a view
    momentum: torch.Tensor  # the weight's momentum buffer
    inputs: torch.Tensor  # (K, w, B): the layer's input
    z: torch.Tensor  # (K, out, B): [H | T] (highway) or the activation (plain), in place
    act: list[tuple[InPlace, torch.Tensor]]  # each run's activation and its part of H (or z)
    gate: torch.Tensor  # (K, w, B) view of z: T (highway)
    diff: torch.Tensor  # H − h (highway): one scratch buffer for every layer
    out: torch.Tensor  # the layer's output
    act_grad: list[tuple[Grad, torch.Tensor, torch.Tensor, torch.Tensor]]  # per run
    grad: torch.Tensor  # the gradient of the layer's output (read)
    input_grad: torch.Tensor  # the gradient of its input (written)
    bias_grad: torch.Tensor  # (K, out): its row of the step's bias gradients


def inplace_activation(name: str, device: torch.device) -> InPlace:
    """``torch.<name>_``, except tanh on the CPU: :func:`tanh_from_sigmoid_`, within 2e-7 of
    torch's tanh in float32 and about 3.5 times cheaper there (an all-tanh pack of depth 50
    trains about 15% faster). On a GPU tanh is one cheap kernel and the sigmoid form four, so
    it stays torch's. Its derivative, ``1 − y²``, is taken from the output either way."""
    if name == "tanh" and device.type == "cpu":
        return tanh_from_sigmoid_
    return getattr(torch, f"{name}_")


class PackedFCStep:
    """One SGD step of every trial of ``pack``, updating it and ``bufs`` in place.

    ``bufs`` are the momentum buffers in ``pack.parameters()`` order; ``momentum`` is (K,).
    """

    def __init__(
        self, pack: PackedFCNet, bufs: list[torch.Tensor], momentum: torch.Tensor
    ) -> None:
        self.pack, self.k, self.bufs = pack, pack.k, bufs
        self.highway = pack.config.highway
        self.width = pack.config.width
        runs = activation_runs(pack.activations)
        device = pack.wl.device
        self._acts = [(inplace_activation(name, device), trials) for name, trials in runs]
        self._act_grads = [(activation_grad(name), trials) for name, trials in runs]
        self._sigmoid_grad = activation_grad("sigmoid")
        self.mu = momentum.view(-1, 1, 1)
        self._plans: dict[int, _Plan] = {}  # by batch size

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (K, B, in), ``y`` (K, B), ``lr`` (K,): each trial's mean loss and number
        correct, (K,) each, before the update."""
        batch = y.shape[1]
        plan = self._plans.get(batch)
        if plan is None:
            plan = self._plans[batch] = _Plan(self, batch, x)
        return plan.step(x, y, lr.view(-1, 1, 1))


class _Plan:
    """The step at one batch size: every buffer and view it uses, made once."""

    def __init__(self, s: PackedFCStep, batch: int, like: torch.Tensor) -> None:
        p, k, w, highway = s.pack, s.k, s.width, s.highway
        n, rows = p.wl.shape[0], (2 * w if s.highway else w)
        self.s, self.batch = s, batch

        def new(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=like.device, dtype=like.dtype)

        def acts(z: torch.Tensor) -> list[tuple[InPlace, torch.Tensor]]:
            return [(f, z[trials]) for f, trials in s._acts]

        def grads(g: torch.Tensor, y: torch.Tensor, into: torch.Tensor) -> list[
                tuple[Grad, torch.Tensor, torch.Tensor, torch.Tensor]]:
            return [(f, g[trials], y[trials], into[trials]) for f, trials in s._act_grads]

        self.z0 = new(k, w, batch)
        self.first_acts = acts(self.z0)
        self.dz0 = new(k, w, batch)
        self.logits = new(k, p.wc.shape[2], batch)
        self.logits_t = new(k, batch, p.wc.shape[2])
        self.dz = new(k, rows, batch)
        self.dz_t = self.dz.transpose(1, 2)
        self.gate_grad = new(k, w, batch)
        gradients = (new(k, w, batch), new(k, w, batch))  # of the activations, alternately
        self.head_grad = gradients[n % 2]
        self.bias_grads = new(n, k, rows)
        bl_t = p.bl.transpose(2, 3)
        # H − h is made again in the backward pass rather than kept for each layer: one more
        # pass over data in cache costs less than writing and reading back a buffer per layer.
        diff = new(k, w, batch) if highway else None
        self.layers: list[_Layer] = []
        h = self.z0
        for i in range(n):
            z = new(k, rows, batch)
            block = z[:, :w]
            out = new(k, w, batch) if highway else z
            grad, input_grad = gradients[(i + 1) % 2], gradients[i % 2]
            self.layers.append(_Layer(
                weight=p.wl[i], weight_t=p.wl[i].transpose(1, 2), bias_t=bl_t[i],
                momentum=s.bufs[2][i], inputs=h, z=z, act=acts(block), gate=z[:, w:],
                diff=diff if highway else z, out=out,
                act_grad=(grads(self.gate_grad, block, self.dz[:, :w]) if highway
                          else grads(grad, z, self.dz)),
                grad=grad, input_grad=input_grad, bias_grad=self.bias_grads[i],
            ))
            h = out
        self.top = h  # the classifier's input
        self.first_grads = grads(gradients[0], self.z0, self.dz0)
        self.first_grad = gradients[0]

    def step(
        self, x: torch.Tensor, y: torch.Tensor, lr3: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        s, p = self.s, self.s.pack
        xt = x.transpose(1, 2)  # (K, in, B)
        torch.baddbmm(p.b0.transpose(1, 2), p.w0.transpose(1, 2), xt, out=self.z0)
        for f, part in self.first_acts:
            f(part)
        if s.highway:
            for layer in self.layers:
                torch.baddbmm(layer.bias_t, layer.weight_t, layer.inputs, out=layer.z)
                for f, part in layer.act:
                    f(part)
                torch.sigmoid(layer.gate, out=layer.gate)
                torch.sub(layer.z[:, : s.width], layer.inputs, out=layer.diff)
                torch.addcmul(layer.inputs, layer.gate, layer.diff, out=layer.out)  # h+T·(H−h)
        else:
            for layer in self.layers:
                torch.baddbmm(layer.bias_t, layer.weight_t, layer.inputs, out=layer.z)
                for f, part in layer.act:
                    f(part)
        torch.baddbmm(p.bc.transpose(1, 2), p.wc.transpose(1, 2), self.top, out=self.logits)
        logp = torch.log_softmax(self.logits, 1)  # (K, classes, B)
        target = y.unsqueeze(1)
        losses = logp.gather(1, target).squeeze(1).mean(1).neg_()
        # argmax over the contiguous last axis of a (K, B, classes) copy: over the strided
        # class axis of the logits it takes five times as long (0.38 ms of a 25 ms step).
        correct = (self.logits_t.copy_(self.logits.transpose(1, 2)).argmax(2) == y).sum(1)
        # d(mean loss)/d(logits) = (softmax − onehot) / B, for each trial's own loss.
        dlogits = logp.exp_()
        dlogits.scatter_add_(1, target, torch.full_like(target, -1, dtype=logp.dtype))
        dlogits.mul_(1.0 / self.batch)
        self._backward(xt, dlogits, lr3)
        return losses, correct

    def _backward(self, xt: torch.Tensor, dlogits: torch.Tensor, lr3: torch.Tensor) -> None:
        s, p, bufs, mu = self.s, self.s.pack, self.s.bufs, self.s.mu
        torch.bmm(p.wc, dlogits, out=self.head_grad)  # (K, w, B), before wc changes
        bufs[4].mul_(mu).baddbmm_(self.top, dlogits.transpose(1, 2))
        p.wc.addcmul_(bufs[4], lr3, value=-1)
        bufs[5].mul_(mu).add_(dlogits.sum(2).unsqueeze(1))
        p.bc.addcmul_(bufs[5], lr3, value=-1)
        dz, dz_t = self.dz, self.dz_t
        for layer in reversed(self.layers):
            g, new_g = layer.grad, layer.input_grad
            if s.highway:
                torch.mul(g, layer.gate, out=self.gate_grad)
                for f, grad, out, into in layer.act_grad:
                    f(grad, out, into)
                torch.sub(layer.z[:, : s.width], layer.inputs, out=layer.diff)
                dgate = torch.mul(g, layer.diff, out=dz[:, s.width :])
                s._sigmoid_grad(dgate, layer.gate, dgate)
                torch.sub(g, self.gate_grad, out=new_g)  # the carry's share: g·(1 − T)
                new_g.baddbmm_(layer.weight, dz)
            else:
                for f, grad, out, into in layer.act_grad:
                    f(grad, out, into)
                torch.bmm(layer.weight, dz, out=new_g)
            layer.momentum.mul_(mu).baddbmm_(layer.inputs, dz_t)
            layer.weight.addcmul_(layer.momentum, lr3, value=-1)
            torch.sum(dz, 2, out=layer.bias_grad)
        if self.layers:  # every hidden layer's bias: (L, K, 1, out)
            bufs[3].mul_(mu).add_(self.bias_grads.unsqueeze(2))
            p.bl.addcmul_(bufs[3], lr3, value=-1)
        for f, grad, out, into in self.first_grads:
            f(grad, out, into)
        bufs[0].mul_(mu).baddbmm_(xt, self.dz0.transpose(1, 2))
        p.w0.addcmul_(bufs[0], lr3, value=-1)
        bufs[1].mul_(mu).add_(self.dz0.sum(2).unsqueeze(1))
        p.b0.addcmul_(bufs[1], lr3, value=-1)
