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
Steps = tuple[torch.Tensor, torch.Tensor]  # a step's per-trial losses and numbers correct
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


class CudaGraphs:
    """How the ``cudagraph`` modes warm up, capture and replay: CUDA's own graphs."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def warm(self, fn: Callable[[], Steps]) -> Steps:
        """Run ``fn`` on a side stream, as capture wants its warm-up steps run."""
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            out = fn()
        current.wait_stream(side)
        return out

    def capture(self, fn: Callable[[], Steps]) -> Captured:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # records, runs nothing: the state is untouched
            out = fn()
        return Captured(graph.replay, out)


class RecordedGraphs:
    """The ``cudagraph`` modes' code path on any device, for tests on a CPU: capture records
    the call without running it; a replay runs it and writes its results into the outputs
    that capture handed out, as a CUDA graph's replay overwrites them."""

    def warm(self, fn: Callable[[], Steps]) -> Steps:
        return fn()

    def capture(self, fn: Callable[[], Steps]) -> Captured:
        outputs: list[torch.Tensor] = []

        def replay() -> None:
            fresh = fn()
            if not outputs:
                outputs.extend(torch.empty_like(t) for t in fresh)
            for out, value in zip(outputs, fresh, strict=True):
                out.copy_(value)

        return Captured(replay, outputs)  # type: ignore[arg-type]


class Captured:
    """A captured step: ``replay()`` reruns it on the captured inputs into ``outputs``."""

    def __init__(self, replay: Callable[[], None], outputs: Steps) -> None:
        self.replay, self.outputs = replay, outputs


class CompiledPackedEngine:
    """:class:`PackedEngine`'s interface over the engine's state, stepping as ``mode`` says.

    ``warmup`` eager steps (real ones, on a side stream as CUDA graph capture wants) come before
    the capture. A batch whose shape differs from the captured one steps eagerly. ``graphs``
    replaces CUDA's graphs (:class:`RecordedGraphs` runs the ``cudagraph`` path on a CPU).
    """

    def __init__(
        self,
        engine: PackedEngine,
        mode: str = "auto",
        *,
        warmup: int = 2,
        backend: str | Callable[..., Any] = "inductor",
        graphs: CudaGraphs | RecordedGraphs | None = None,
    ) -> None:
        self.engine, self.k, self.pack = engine, engine.k, engine.pack
        device = engine.params[0].device
        self.mode = resolve_mode(mode, device if graphs is None else torch.device("cuda"))
        self._graphs = graphs if graphs is not None else CudaGraphs(device)
        self._warmup, self._warm = warmup, 0
        self._exponent = torch.zeros((), device=device, dtype=engine.lr0.dtype)
        self._fn = engine.step  # accepts a tensor exponent: lr0 * rate**exponent
        if self.mode.startswith("inductor"):
            compiled = torch.compile(engine.autograd_step, backend=backend, dynamic=False)

            def step_compiled(*args: Any) -> tuple[torch.Tensor, torch.Tensor]:
                with recompile_limit(_RECOMPILE_LIMIT):  # compiles happen inside the call
                    return compiled(*args)

            self._fn = step_compiled
        self._graph: Captured | None = None
        self._static: tuple[torch.Tensor, torch.Tensor] | None = None

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
                return self._graphs.warm(lambda: self._fn(xb, yb, self._exponent))  # type: ignore[arg-type]
            self._static = (xb.clone(), yb.clone())
            x, y = self._static
            self._graph = self._graphs.capture(lambda: self._fn(x, y, self._exponent))  # type: ignore[arg-type]
        assert self._static is not None
        x, y = self._static
        if x.shape != xb.shape or y.shape != yb.shape:
            return self._fn(xb, yb, self._exponent)  # type: ignore[arg-type]
        x.copy_(xb)
        y.copy_(yb)
        self._graph.replay()
        losses, correct = self._graph.outputs
        return losses.clone(), correct.clone()  # the graph's outputs are overwritten next step

    # -- the rest of the interface: the wrapped engine's, on the shared state ----------------

    def lr(self, exponent: float) -> torch.Tensor:
        return self.engine.lr(exponent)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.engine.evaluate(x, y)

    def snapshot(self, improved: torch.Tensor) -> None:
        self.engine.snapshot(improved)  # copies the live weights: the graph is not involved

    def freeze(self, index: int) -> None:
        self.engine.freeze(index)  # in place: the captured graph sees it

    def trial_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        return self.engine.trial_state_dict(index)
