"""The arithmetic limit of training Figure 1's FC nets: how many trial-steps per second a device
could run if it did nothing but the nets' matrix multiplications at its measured peak.

Derivation (per trial-step, batch B, input size I, width w, depth d, C classes, highway):

- forward: the plain first layer ``2·B·I·w``; each of the ``d − 1`` highway layers two matmuls,
  H and T, ``2 · 2·B·w·w``; the classifier ``2·B·w·C`` (plain layers: one matmul each);
- backward: twice the forward for every layer (input and weight gradients), except the first
  layer, which needs no input gradient (once its forward);
- element-wise work (σ, the gate mix, the loss, the SGD update) is O(B·w) per layer against
  O(B·w²) for the matmuls and is left out: the limit is an upper bound.

The device's peak is measured, not taken from a data sheet: the best of a few large square
matmuls in the benchmark's dtype (on this CPU, all cores). A trainable's share of the limit is
``trial-steps/s ÷ (peak FLOP/s ÷ FLOPs per trial-step)``.
"""

from __future__ import annotations

import time

import torch


def flops_per_trial_step(
    depth: int,
    width: int,
    batch: int,
    inputs: int = 784,
    classes: int = 10,
    highway: bool = True,
) -> float:
    """Matmul FLOPs of one SGD step of one trial (forward + backward), as derived above."""
    first = 2.0 * batch * inputs * width
    per_layer = (2 if highway else 1) * 2.0 * batch * width * width
    head = 2.0 * batch * width * classes
    hidden = (depth - 1) * per_layer
    return 2.0 * first + 3.0 * (hidden + head)


def peak_flops(
    device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5
) -> float:
    """Measured FLOP/s of the best of ``repeats`` ``size``-square matmuls on ``device``."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)  # warm up the kernel choice and the allocator
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def limit(flops_per_step: float, peak: float) -> float:
    """Trial-steps per second at the arithmetic limit."""
    return peak / flops_per_step
