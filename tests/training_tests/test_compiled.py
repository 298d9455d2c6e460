"""training.compiled: the fast paths compute PackedEngine's numbers behind its interface.
Each fast path against the eager reference nets of models/ (inductor, the CUDA-graph logic
emulated on the CPU, conv packs) is in test_fast_paths.py; here, the modes and the exponent.

A step with the exponent as a 0-d tensor (what CUDA graphs capture and torch.compile traces)
computes ``rate**exponent`` with a tensor-tensor ``pow``: a last-bit difference in the learning
rate at most, hence a float32 tolerance. Inductor fuses elementwise work and may reorder it: a
looser float32 tolerance still far below any real difference (a wrong lr or momentum moves the
loss by 1e-3 or more within a few steps).
"""

from __future__ import annotations

import pytest
import torch

from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.compiled import (
    CompiledPackedEngine,
    compile_engine,
    resolve_mode,
)
from hwsearch.training.data import Dataset
from hwsearch.training.engines import PackedEngine
from hwsearch.training.trainer import build_engine

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")

TRIALS = [
    Hyperparams(lr=0.05, momentum=0.9, lr_decay=0.9, activation="tanh", gate_bias=-2.0, seed=1),
    Hyperparams(lr=0.02, momentum=0.5, lr_decay=0.5, activation="tanh", gate_bias=-1.0, seed=2),
    Hyperparams(lr=0.1, momentum=0.0, lr_decay=1.0, activation="tanh", gate_bias=-3.0, seed=3),
]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_data(device: str = "cpu", n: int = 192, dtype: torch.dtype = torch.float32) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    data = Dataset(
        "tiny",
        torch.rand(n, 1, 4, 4, generator=gen),
        torch.randint(0, 10, (n,), generator=gen),
        torch.rand(64, 1, 4, 4, generator=gen),
        torch.randint(0, 10, (64,), generator=gen),
        10,
    )
    return data.to(device, dtype)


def engine(data: Dataset, model: str = "highway", depth: int = 4) -> PackedEngine:
    config = TrainConfig(model=model, depth=depth, width=8, batch_size=16)
    built, _ = build_engine(config, TRIALS, data, packed=True)
    assert isinstance(built, PackedEngine)
    return built


def batches(
    data: Dataset, steps: int, k: int = 3, batch: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    gen = torch.Generator().manual_seed(1)
    out = []
    for s in range(steps):
        idx = torch.randint(0, len(data.y_train), (k, batch), generator=gen).to(data.y_train.device)
        out.append((data.x_train[idx], data.y_train[idx], s / 5))
    return out


def state(e: PackedEngine) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (*e.params, *e.bufs)]


# -- the eager path is the engine itself ----------------------------------------------------


def test_eager_mode_is_the_engine_itself() -> None:
    """On a CPU nothing wraps the engine: the fast path there is PackedEngine's own step."""
    base = engine(tiny_data())
    assert compile_engine(base, "eager") is base
    assert compile_engine(base) is base  # auto on the CPU


# -- the exponent as a tensor: what graphs capture and compile traces -------------------------


def test_tensor_exponent_step_matches_the_float_one() -> None:
    data = tiny_data()
    floats, tensors = engine(data), engine(data)
    exponent_t = torch.zeros(())
    for xb, yb, exponent in batches(data, 6):
        l1, _ = floats.step(xb, yb, exponent)
        l2, _ = tensors.step(xb, yb, exponent_t.fill_(exponent))  # type: ignore[arg-type]
        torch.testing.assert_close(l2, l1, rtol=1e-6, atol=1e-7)
    for a, b in zip(state(floats), state(tensors), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_modes_resolve_by_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_mode("auto", cpu) == "eager"
    assert resolve_mode("auto", cuda) == "cudagraph"
    assert resolve_mode("inductor", cpu) == "inductor"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_mode("cudagraph", cpu)
    with pytest.raises(ValueError, match="unknown compile mode"):
        resolve_mode("fast", cpu)


class CompileCounter:
    """A torch.compile backend that counts the frames it compiles and runs them as traced."""

    def __init__(self) -> None:
        self.frame_count = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list) -> object:
        self.frame_count += 1
        return graph.forward


def test_one_trace_serves_every_exponent() -> None:
    torch.compiler.reset()
    counter = CompileCounter()  # traces without inductor: seconds, and exact
    data = tiny_data()
    ref, ours = engine(data), CompiledPackedEngine(engine(data), "inductor", backend=counter)
    for i, (xb, yb, exponent) in enumerate(batches(data, 5)):
        l1, c1 = ref.step(xb, yb, exponent)
        l2, c2 = ours.step(xb, yb, exponent)
        torch.testing.assert_close(l2, l1, rtol=1e-6, atol=1e-7)
        assert torch.equal(c1, c2)
        if i == 0:
            traced = counter.frame_count
    assert traced > 0 and counter.frame_count == traced  # new exponents: no recompiles


# -- CUDA only ---------------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize("mode", ["cudagraph", "inductor-cudagraph"])
def test_cuda_graph_matches_eager(mode: str) -> None:
    torch.compiler.reset()
    data = tiny_data("cuda")
    ref, ours = engine(data), compile_engine(engine(data), mode)
    assert isinstance(ours, CompiledPackedEngine)
    steps = batches(data, 8)
    for xb, yb, exponent in steps[:6]:  # 2 warm-up steps, capture, replays
        l1, c1 = ref.step(xb, yb, exponent)
        l2, c2 = ours.step(xb, yb, exponent)
        torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-6)
        assert torch.equal(c1, c2)
    assert ours._graph is not None
    ref.freeze(1)
    ours.freeze(1)  # in place: the graph must see it
    for xb, yb, exponent in steps[6:]:
        l1, _ = ref.step(xb, yb, exponent)
        l2, _ = ours.step(xb, yb, exponent)
        torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-6)
    for a, b in zip(state(ref), state(ours.engine), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert all(
        p.select(a, 1).abs().sum() == 0
        for p, a in zip(ours.engine.params, ours.engine._trial_axis, strict=True)
    )
    odd = batches(data, 1, batch=5)[0]  # another shape: stepped eagerly, graph kept
    torch.testing.assert_close(ours.step(*odd)[0], ref.step(*odd)[0], rtol=1e-5, atol=1e-6)
