"""K fully connected nets of one architecture as one module of stacked weights.

A 50-wide net cannot fill an accelerator; K of them, stacked along a leading trial axis and run
through batched matmuls, can. Each trial keeps its own weights, data and hyperparameters; the
stacking only shares kernel launches. Weights convert to and from :class:`FCNet` state dicts, so
a trial trained in a pack is stored and analysed like any other.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .activations import get_activation
from .fc_config import FCConfig


class PackedFCNet(nn.Module):
    """Shapes: input (K, B, in) -> logits (K, B, classes). Layer-major stacks keep each layer's
    (K, ·, ·) slice contiguous for ``baddbmm``.

    Each trial has its own activation (``activations``, one per trial; default: the config's
    for all). Trials of one activation should sit next to each other: every layer applies
    each activation once, to its contiguous run of trials, so a pack of relu and tanh trials
    costs two elementwise kernels per layer instead of one, not K."""

    def __init__(self, config: FCConfig, k: int, activations: Sequence[str] = ()) -> None:
        super().__init__()
        if config.carry_gate:
            raise ValueError("packs do not support an independent carry gate; train it singly")
        activations = tuple(activations) or (config.activation,) * k
        if len(activations) != k:
            raise ValueError(f"{len(activations)} activations for a pack of {k}")
        self.config, self.k, self.activations = config, k, activations
        c, w, n_hidden = config, config.width, config.depth - 1
        out = 2 * w if c.highway else w  # highway: H and T side by side

        def zeros(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.zeros(*shape))

        self.w0, self.b0 = zeros(k, c.in_features, w), zeros(k, 1, w)
        self.wl, self.bl = zeros(n_hidden, k, w, out), zeros(n_hidden, k, 1, out)
        self.wc, self.bc = zeros(k, w, c.num_classes), zeros(k, 1, c.num_classes)
        # Contiguous runs of one activation: (function, number of trials).
        self._run_names = [(name, len(list(group)))
                           for name, group in itertools.groupby(activations)]
        self._runs = [(get_activation(name), n) for name, n in self._run_names]

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        """Each trial's own activation of ``z`` (K, ...), one kernel per run of trials."""
        if len(self._runs) == 1:
            return self._runs[0][0](z)
        parts = z.split([n for _, n in self._runs])
        return torch.cat([f(part) for (f, _), part in zip(self._runs, parts, strict=True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act, w = self._act, self.config.width
        h = act(torch.baddbmm(self.b0, x, self.w0))  # (K, B, w)
        highway = self.config.highway
        # Unbound once: indexing wl[layer] would make autograd zero-fill and sum a gradient of
        # the whole (L, K, w, 2w) stack for every layer, O(L²) memory traffic.
        for weight, bias in zip(self.wl.unbind(0), self.bl.unbind(0), strict=True):
            z = torch.baddbmm(bias, h, weight)  # (K, B, 2w) or (K, B, w)
            if highway:
                block, gate = act(z[..., :w]), torch.sigmoid(z[..., w:])
                h = h + gate * (block - h)
            else:
                h = act(z)
        return torch.baddbmm(self.bc, h, self.wc)  # (K, B, classes)

    @torch.no_grad()
    def shared_logits(
        self, x: torch.Tensor, chunk: int
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Every trial's logits for inputs ``x`` (N, in) that all trials share, ``chunk``
        examples at a time: (rows, logits (K, n, classes)) per chunk. Inference only; each
        chunk's logits are valid until the next is yielded.

        The first layer is one matmul of a chunk with all K trials' weights side by side,
        ``(K·w, in) @ (in, n)``, far faster than K small ones; the rest run feature-major,
        ``(K, w, n)``, so that H and T are contiguous blocks per trial, in two buffers made
        once per chunk size: a layer is its matmul and three elementwise passes (the
        activation, the gate's sigmoid, and ``torch.lerp`` for h + T·(H − h))."""
        k, w = self.k, self.config.width
        first = self.w0.transpose(1, 2).reshape(k * w, -1)  # (K·w, in): a copy, made once
        first_bias = self.b0.transpose(1, 2).reshape(k * w, 1)
        layers = [(weight.transpose(1, 2), bias.transpose(1, 2))
                  for weight, bias in zip(self.wl.unbind(0), self.bl.unbind(0), strict=True)]
        buffers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for start in range(0, x.shape[0], chunk):
            rows = slice(start, start + chunk)
            xb = x[rows]
            n = xb.shape[0]
            if n not in buffers:  # the full chunk, and a ragged tail
                rows_z = 2 * w if self.config.highway else w
                buffers[n] = (x.new_empty(k * w, n), x.new_empty(k, rows_z, n))
            h_buf, z = buffers[n]
            h = torch.addmm(first_bias, first, xb.T, out=h_buf).view(k, w, n)
            self._act_(h)
            for weight_t, bias_t in layers:
                if self.config.highway:
                    torch.baddbmm(bias_t, weight_t, h, out=z)
                    block, gate = z[:, :w], z[:, w:]
                    self._act_(block)
                    gate.sigmoid_()
                    h.lerp_(block, gate)  # h + T·(H − h), in place
                else:
                    torch.baddbmm(bias_t, weight_t, h, out=z)
                    self._act_(z)
                    h, z = z, h
            yield rows, torch.baddbmm(self.bc, h.transpose(1, 2), self.wc)  # (K, n, classes)

    def _act_(self, z: torch.Tensor) -> None:
        """:meth:`_act` in place; tanh as :func:`tanh_from_sigmoid_`."""
        start = 0
        for name, n in self._run_names:
            part = z[start : start + n]
            if name == "tanh":
                tanh_from_sigmoid_(part)
            else:
                getattr(torch, f"{name}_")(part)
            start += n

    # -- conversion to and from single nets -------------------------------------------------

    @classmethod
    def from_state_dicts(
        cls, config: FCConfig, state_dicts: Sequence[dict[str, torch.Tensor]],
        activations: Sequence[str] = (),
    ) -> PackedFCNet:
        pack = cls(config, len(state_dicts), activations)
        ref = state_dicts[0]
        pack.to(dtype=ref["classifier.weight"].dtype)
        with torch.no_grad():
            for i, sd in enumerate(state_dicts):
                pack.w0[i] = sd["first.linear.weight"].T
                pack.b0[i, 0] = sd["first.linear.bias"]
                for layer in range(config.depth - 1):
                    weight, bias = _hidden_to_packed(config.highway, sd, f"layers.{layer}")
                    pack.wl[layer, i], pack.bl[layer, i, 0] = weight, bias
                pack.wc[i] = sd["classifier.weight"].T
                pack.bc[i, 0] = sd["classifier.bias"]
        return pack

    @torch.no_grad()
    def trial_state_dict(
        self, i: int, params: Sequence[torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Trial ``i``'s weights under :class:`FCNet`'s names, on the CPU; from ``params`` (in
        ``parameters()`` order, e.g. a copy kept of a best epoch) instead of the live ones."""
        w0, b0, wl, bl, wc, bc = params if params is not None else self.parameters()
        w = self.config.width
        sd = {
            "first.linear.weight": w0[i].T,
            "first.linear.bias": b0[i, 0],
            "classifier.weight": wc[i].T,
            "classifier.bias": bc[i, 0],
        }
        for layer in range(self.config.depth - 1):
            weight, bias = wl[layer, i], bl[layer, i, 0]
            if self.config.highway:
                sd[f"layers.{layer}.h.weight"] = weight[:, :w].T
                sd[f"layers.{layer}.h.bias"] = bias[:w]
                sd[f"layers.{layer}.t.weight"] = weight[:, w:].T
                sd[f"layers.{layer}.t.bias"] = bias[w:]
            else:
                sd[f"layers.{layer}.linear.weight"] = weight.T
                sd[f"layers.{layer}.linear.bias"] = bias
        return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def tanh_from_sigmoid_(z: torch.Tensor) -> torch.Tensor:
    """``tanh(z) = 2·sigmoid(2z) − 1``, in place. On the CPU torch's own tanh costs about seven
    times its sigmoid (2.7 against 0.4 ns an element, one thread, here), so this form is about
    3.5 times faster, within 2e-7 of tanh in float32 (torch.tanh: 3e-8). Used by evaluation,
    and by training on the CPU (``training/fc_step.py``): a trial's numbers move at float
    rounding, inside the tolerance that the tests hold the packed engine to against each net on
    its own."""
    return z.mul_(2).sigmoid_().mul_(2).sub_(1)


def _hidden_to_packed(
    highway: bool, sd: dict[str, torch.Tensor], prefix: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if highway:
        weight = torch.cat([sd[f"{prefix}.h.weight"].T, sd[f"{prefix}.t.weight"].T], dim=1)
        return weight, torch.cat([sd[f"{prefix}.h.bias"], sd[f"{prefix}.t.bias"]])
    return sd[f"{prefix}.linear.weight"].T, sd[f"{prefix}.linear.bias"]
