"""The SGD step of a pack of fully connected nets, written out by hand.

Autograd records every op of a step, allocates every intermediate anew and sums each layer's
gradient after the whole backward pass; on a CPU core, where a pack's matmuls are small, that
bookkeeping costs as much as the arithmetic. This step computes the same numbers with the
reference's own functions (``torch.tanh``, ``torch.sigmoid``, ``x + t·(h − x)``, torch's SGD
update) in a fixed sequence of ops on buffers allocated once per batch shape:

* **Layout.** Activations are kept feature-major, ``(K, width, B)``: a highway layer's fused
  ``[H | T]`` matmul then yields H and T as two contiguous blocks per trial, which the
  elementwise kernels run over at full vector width (the row-major slices ``z[..., :w]`` are
  strided). The stored weights keep :class:`PackedFCNet`'s layout; the matmuls read them
  transposed, which BLAS does for free.
* **Backward by hand.** Per highway layer: ``dH = g·T`` through the activation's derivative,
  ``dT = g·(H − h)`` through the sigmoid's, ``dh = g − g·T + W·dz``.
* **Update as soon as a layer's gradient is known**, while it is in cache: ``buf = μ·buf + g;
  p −= lr·buf`` per trial, the weight gradient accumulated into the momentum buffer by the
  matmul itself. A layer's input gradient is taken before its weights change.

Only summation orders differ from the reference (the tests hold the two to float64 rounding).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hwsearch.compat import activation_grad
from hwsearch.models.packed import PackedFCNet


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
class _Buffers:
    """Everything a step writes, for one (K, B) batch shape."""

    z0: torch.Tensor  # (K, w, B): the first layer's output
    z: list[torch.Tensor]  # per hidden layer: (K, 2w, B) [H | T] for highway, (K, w, B) plain
    diff: list[torch.Tensor]  # highway: H − h per layer
    out: list[torch.Tensor]  # highway: each layer's output h + T·(H − h)
    logits: torch.Tensor  # (K, classes, B)
    dz: torch.Tensor  # a hidden layer's pre-activation gradient
    gate_grad: torch.Tensor  # g·T
    grads: tuple[torch.Tensor, torch.Tensor]  # the activation gradient, alternately
    bias_grad: torch.Tensor  # (K, out)
    dz0: torch.Tensor


class PackedFCStep:
    """One SGD step of every trial of ``pack``, updating it and ``bufs`` in place.

    ``bufs`` are the momentum buffers in ``pack.parameters()`` order; ``momentum`` is (K,).
    """

    def __init__(
        self, pack: PackedFCNet, bufs: list[torch.Tensor], momentum: torch.Tensor
    ) -> None:
        self.pack, self.k = pack, pack.k
        self.highway = pack.config.highway
        self.width = pack.config.width
        runs = activation_runs(pack.activations)
        self._acts = [(getattr(torch, f"{name}_"), trials) for name, trials in runs]  # in place
        self._act_grads = [(activation_grad(name), trials) for name, trials in runs]
        self._sigmoid_grad = activation_grad("sigmoid")
        self.mu = momentum.view(-1, 1, 1)
        p = pack
        n = p.wl.shape[0]
        # Views made once: the parameters and buffers are updated in place, so they stay valid.
        self._hidden = [(p.wl[i], p.bl[i], p.wl[i].transpose(1, 2), p.bl[i].transpose(1, 2),
                         bufs[2][i], bufs[3][i]) for i in range(n)]
        self._first = (p.w0, p.b0, p.w0.transpose(1, 2), p.b0.transpose(1, 2), bufs[0], bufs[1])
        self._head = (p.wc, p.bc, p.wc.transpose(1, 2), p.bc.transpose(1, 2), bufs[4], bufs[5])
        self._buffers: dict[int, _Buffers] = {}  # by batch size

    def _alloc(self, batch: int, like: torch.Tensor) -> _Buffers:
        k, w, n = self.k, self.width, self.pack.wl.shape[0]
        classes = self.pack.wc.shape[2]

        def new(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=like.device, dtype=like.dtype)

        rows = 2 * w if self.highway else w
        highway = self.highway
        return _Buffers(
            z0=new(k, w, batch),
            z=[new(k, rows, batch) for _ in range(n)],
            diff=[new(k, w, batch) for _ in range(n)] if highway else [],
            out=[new(k, w, batch) for _ in range(n)] if highway else [],
            logits=new(k, classes, batch),
            dz=new(k, rows, batch),
            gate_grad=new(k, w, batch) if highway else new(0),
            grads=(new(k, w, batch), new(k, w, batch)),
            bias_grad=new(k, rows),
            dz0=new(k, w, batch),
        )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, lr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (K, B, in), ``y`` (K, B), ``lr`` (K,): each trial's mean loss and number
        correct, (K,) each, before the update."""
        k, batch = y.shape
        b = self._buffers.get(batch)
        if b is None:
            b = self._buffers[batch] = self._alloc(batch, x)
        lr3 = lr.view(-1, 1, 1)
        xt = x.transpose(1, 2)  # (K, in, B)
        inputs = self._forward(b, xt)
        h = inputs[-1]
        _, _, wct, bct, _, _ = self._head
        torch.baddbmm(bct, wct, h, out=b.logits)  # (K, classes, B)
        logp = torch.log_softmax(b.logits, 1)
        target = y.unsqueeze(1)
        losses = logp.gather(1, target).squeeze(1).mean(1).neg_()
        correct = (b.logits.argmax(1) == y).sum(1)
        # d(mean loss)/d(logits) = (softmax − onehot) / B, for each trial's own loss.
        dlogits = logp.exp_()
        dlogits.scatter_add_(1, target, torch.full_like(target, -1, dtype=logp.dtype))
        dlogits.mul_(1.0 / batch)
        self._backward(b, inputs, xt, dlogits, lr3)
        return losses, correct

    def _forward(self, b: _Buffers, xt: torch.Tensor) -> list[torch.Tensor]:
        """Each hidden layer's input, and last the classifier's: (K, w, B) each."""
        _, _, w0t, b0t, _, _ = self._first
        torch.baddbmm(b0t, w0t, xt, out=b.z0)
        self._activate(b.z0)
        h, inputs, w = b.z0, [b.z0], self.width
        for i, (_, _, wt, bt, _, _) in enumerate(self._hidden):
            z = torch.baddbmm(bt, wt, h, out=b.z[i])
            if self.highway:
                block, gate = z[:, :w], z[:, w:]
                self._activate(block)
                torch.sigmoid(gate, out=gate)
                diff = torch.sub(block, h, out=b.diff[i])
                h = torch.addcmul(h, gate, diff, out=b.out[i])  # h + T·(H − h)
            else:
                self._activate(z)
                h = z
            inputs.append(h)
        return inputs

    def _backward(
        self, b: _Buffers, inputs: list[torch.Tensor], xt: torch.Tensor,
        dlogits: torch.Tensor, lr3: torch.Tensor,
    ) -> None:
        w = self.width
        wc, bc, _, _, buf_w, buf_b = self._head
        g = torch.bmm(wc, dlogits, out=b.grads[0])  # (K, w, B), before wc changes
        self._update(wc, buf_w, inputs[-1], dlogits, lr3)
        self._update_bias(bc, buf_b, dlogits.sum(2), lr3)
        flip = 1
        for i in reversed(range(len(self._hidden))):
            weight, bias, _, _, buf_w, buf_b = self._hidden[i]
            h, dz = inputs[i], b.dz
            new_g = b.grads[flip]
            flip ^= 1
            if self.highway:
                z = b.z[i]
                block, gate = z[:, :w], z[:, w:]
                gate_grad = torch.mul(g, gate, out=b.gate_grad)
                self._activation_grad(gate_grad, block, dz[:, :w])
                dgate = torch.mul(g, b.diff[i], out=dz[:, w:])
                self._sigmoid_grad(dgate, gate, dgate)
                torch.sub(g, gate_grad, out=new_g)  # the carry's share: g·(1 − T)
                new_g.baddbmm_(weight, dz)
            else:
                self._activation_grad(g, inputs[i + 1], dz)
                torch.bmm(weight, dz, out=new_g)
            self._update(weight, buf_w, h, dz, lr3)
            self._update_bias(bias, buf_b, torch.sum(dz, 2, out=b.bias_grad), lr3)
            g = new_g
        w0, b0, _, _, buf_w, buf_b = self._first
        self._activation_grad(g, b.z0, b.dz0)
        self._update(w0, buf_w, xt, b.dz0, lr3)
        self._update_bias(b0, buf_b, torch.sum(b.dz0, 2, out=b.bias_grad[:, :w]), lr3)

    def _activate(self, z: torch.Tensor) -> None:
        """Each trial's activation of ``z`` (K, ...), in place."""
        for f, trials in self._acts:
            f(z[trials])

    def _activation_grad(self, grad: torch.Tensor, out: torch.Tensor, into: torch.Tensor) -> None:
        for f, trials in self._act_grads:
            f(grad[trials], out[trials], into[trials])

    def _update(
        self, weight: torch.Tensor, buf: torch.Tensor, inputs: torch.Tensor, dz: torch.Tensor,
        lr3: torch.Tensor,
    ) -> None:
        """``buf = μ·buf + inputs·dzᵀ; weight −= lr·buf`` for a (K, in, out) weight."""
        buf.mul_(self.mu).baddbmm_(inputs, dz.transpose(1, 2))
        weight.addcmul_(buf, lr3, value=-1)

    def _update_bias(
        self, bias: torch.Tensor, buf: torch.Tensor, grad: torch.Tensor, lr3: torch.Tensor
    ) -> None:
        """The same for a (K, 1, out) bias, its gradient ``grad`` (K, out)."""
        buf.mul_(self.mu).add_(grad.unsqueeze(1))
        bias.addcmul_(buf, lr3, value=-1)

