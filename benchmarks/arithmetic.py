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
from collections.abc import Callable

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


def eval_flops_per_example(
    depth: int, width: int, inputs: int = 784, classes: int = 10, highway: bool = True
) -> float:
    """Matmul FLOPs of one forward pass of one trial over one example (the evaluation)."""
    per_layer = (2 if highway else 1) * 2.0 * width * width
    return 2.0 * inputs * width + (depth - 1) * per_layer + 2.0 * width * classes


def one_thread_peak(dtype: torch.dtype = torch.float32) -> float:
    """:func:`peak_flops` of one thread on the CPU, timed in this thread's CPU time: on a
    shared machine the wall clock also counts the time other processes hold the core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return peak_flops(torch.device("cpu"), dtype, clock=time.thread_time)
    finally:
        torch.set_num_threads(threads)


def peak_flops(
    device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Measured FLOP/s of the best of ``repeats`` ``size``-square matmuls on ``device``, timed
    by ``clock``."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)  # warm up the kernel choice and the allocator
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = clock()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, clock() - start)
    return 2.0 * size**3 / best


def limit(flops_per_step: float, peak: float) -> float:
    """Trial-steps per second at the arithmetic limit."""
    return peak / flops_per_step
