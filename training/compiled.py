"""Fast paths for :class:`PackedEngine`: the whole SGD step as one CUDA graph, or compiled.

A pack of 50-wide nets is launch-bound on a GPU: a step of a depth-50 pack launches several
hundred small kernels (a ``baddbmm`` and a few elementwise ops per layer, twice as many backward,
the foreach update), each costing microseconds of host time whatever K is. The modes:

``cudagraph``
    The engine's own eager step (the hand-written forward, backward and update of
    ``training/fc_step.py``) captured once into a CUDA graph over static input buffers, then
    replayed: a step costs two input copies, one replay and two tiny output copies. Same
    kernels as eager, so the same numbers, but for ``rate**exponent`` taken tensor to tensor
    (the learning rate's last bit at most).
``inductor``
    ``torch.compile`` of the engine's autograd step (forward, ``autograd.grad`` through
    AOTAutograd, foreach update), fusing the elementwise work; compiles once per engine
    (seconds on a GPU for depth 10, longer for 100).
``inductor-cudagraph``
    Both: the compiled step captured into a CUDA graph.
``eager`` / ``auto``
    The engine itself, stepping eagerly; ``auto`` means ``cudagraph`` on CUDA and ``eager``
    elsewhere, so CPU runs keep the eager path.

``lr = lr0 · decay**exponent`` changes every step, so the exponent goes in as a 0-d device tensor
filled before each step: a captured graph or a compiled trace then serves every step (no
recompiles, no stale learning rate). ``lr0``, parameters and momentum buffers are updated in
place, so :meth:`freeze` keeps working after capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import torch

from hwsearch.compat import recompile_limit

from .engines import PackedEngine

MODES: Final = ("auto", "eager", "cudagraph", "inductor", "inductor-cudagraph")
_RECOMPILE_LIMIT = 64  # one compile per engine (each pack of a search); dynamo's default is 8


def resolve_mode(mode: str, device: torch.device) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown compile mode {mode!r}; allowed: {', '.join(MODES)}")
    if mode == "auto":
        return "cudagraph" if device.type == "cuda" else "eager"
    if mode.endswith("cudagraph") and device.type != "cuda":
        raise ValueError(f"mode {mode!r} needs a CUDA device; the pack is on {device}")
    return mode


def compile_engine(
    engine: PackedEngine, mode: str = "auto", **options: object
) -> PackedEngine | CompiledPackedEngine:
    """The fast path for ``engine`` (sharing its state): ``engine`` itself where the mode
    resolves to eager, else a :class:`CompiledPackedEngine`."""
    if isinstance(engine, CompiledPackedEngine):
        return engine
    if resolve_mode(mode, engine.params[0].device) == "eager":
        return engine
    return CompiledPackedEngine(engine, mode, **options)  # type: ignore[arg-type]


class CompiledPackedEngine:
    """:class:`PackedEngine`'s interface over the engine's state, stepping as ``mode`` says.

    ``warmup`` eager steps (real ones, on a side stream as CUDA graph capture wants) come before
    the capture. A batch whose shape differs from the captured one steps eagerly.
    """

    def __init__(
        self,
        engine: PackedEngine,
        mode: str = "auto",
        *,
        warmup: int = 2,
        backend: str | Callable[..., Any] = "inductor",
    ) -> None:
        self.engine, self.k, self.pack = engine, engine.k, engine.pack
        device = engine.params[0].device
        self.mode = resolve_mode(mode, device)
        self._device, self._warmup, self._warm = device, warmup, 0
        self._exponent = torch.zeros((), device=device, dtype=engine.lr0.dtype)
        self._fn = engine.step  # accepts a tensor exponent: lr0 * rate**exponent
        if self.mode.startswith("inductor"):
            compiled = torch.compile(engine.autograd_step, backend=backend, dynamic=False)

            def step_compiled(*args: Any) -> tuple[torch.Tensor, torch.Tensor]:
                with recompile_limit(_RECOMPILE_LIMIT):  # compiles happen inside the call
                    return compiled(*args)

            self._fn = step_compiled
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static: tuple[torch.Tensor, torch.Tensor] | None = None
        self._out: tuple[torch.Tensor, torch.Tensor] | None = None

    def step(
        self, xb: torch.Tensor, yb: torch.Tensor, exponent: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "eager":
            return self.engine.step(xb, yb, exponent)
        self._exponent.fill_(exponent)
        if not self.mode.endswith("cudagraph"):
            return self._fn(xb, yb, self._exponent)  # type: ignore[arg-type]
        if self._graph is None:
            if self._warm < self._warmup:
                self._warm += 1
                return self._side_stream_step(xb, yb)
            self._capture(xb, yb)
        assert self._static is not None and self._graph is not None and self._out is not None
        x, y = self._static
        if x.shape != xb.shape or y.shape != yb.shape:
            return self._fn(xb, yb, self._exponent)  # type: ignore[arg-type]
        x.copy_(xb)
        y.copy_(yb)
        self._graph.replay()
        losses, correct = self._out
        return losses.clone(), correct.clone()  # the graph's outputs are overwritten next step

    def _side_stream_step(
        self, xb: torch.Tensor, yb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        current = torch.cuda.current_stream(self._device)
        side = torch.cuda.Stream(self._device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            out = self._fn(xb, yb, self._exponent)  # type: ignore[arg-type]
        current.wait_stream(side)
        return out

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        self._static = (xb.clone(), yb.clone())
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # records, runs nothing: the state is untouched
            self._out = self._fn(*self._static, self._exponent)  # type: ignore[arg-type]
        self._graph = graph

    # -- the rest of the interface: the wrapped engine's, on the shared state ----------------

    def lr(self, exponent: float) -> torch.Tensor:
        return self.engine.lr(exponent)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.engine.evaluate(x, y)

    def snapshot(self, improved: torch.Tensor) -> None:
        self.engine.snapshot(improved)  # copies the live weights: the graph is not involved

    def restore_best(self) -> None:
        self.engine.restore_best()  # in place: the captured graph's inputs stay where they were

    def freeze(self, index: int) -> None:
        self.engine.freeze(index)  # in place: the captured graph sees it

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return self.engine.trial_state_dict(index)
