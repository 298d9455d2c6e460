"""Every fast path against the plain eager reference: the nets of ``models/`` (``FCNet``,
``ConvHighwayNet``) stepped one by one with ``F.cross_entropy`` and ``torch.optim.SGD``, on the
same initial weights and the same batches. Same losses step by step, same gradients, same
weights after, same objective (each trial's cross-entropy over the whole training set), also
for packs that mix activations, and for conv packs.

The fast paths that run on this CPU, each named in its test id and asserted by its mode:

``pack``
    :class:`PackedEngine` stepping eagerly: what ``compile_engine(..., "auto")`` gives on a CPU.
``inductor``
    ``torch.compile`` of the pack's step (inductor's C++ code for the CPU).
``cudagraph-emulated``
    The CUDA-graph path (warm-up steps, capture over static input buffers, replays, cloned
    outputs, in-place freezing, eager steps for other shapes) with ``torch.cuda``'s graph and
    stream calls replaced by a CPU emulation: capture records the step's ATen ops and puts
    back what they changed (a real capture runs nothing); a replay runs the recorded ops again
    on the same tensors and writes into the captured outputs. What it cannot check is CUDA
    itself; the capture logic around it runs as written.

Tolerance: float64 throughout; a pack sums each matmul in another order than K separate nets
(~1e-16 relative per op), which ten steps amplify to well under 1e-10. A wrong learning rate,
momentum, gate, activation or batch moves the losses by 1e-4 or more.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from hwsearch.models import preset
from hwsearch.models.conv import ConvHighwayNet
from hwsearch.models.packed_conv import PackedConvNet
from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training import compiled as compiled_module
from hwsearch.training.compiled import CompiledPackedEngine, compile_engine
from hwsearch.training.conv_engine import PackedConvEngine
from hwsearch.training.data import Dataset
from hwsearch.training.engines import PackedEngine, SingleEngine
from hwsearch.training.loop import fit, init_generator
from hwsearch.training.recipe import CAFFE_MNIST
from hwsearch.training.trainer import build_engine, build_model
from hwtest import parts

pytestmark = pytest.mark.usefixtures("torch_one_thread")

REL, ABS = 1e-10, 1e-12
CONFIG = TrainConfig(model="highway", depth=4, width=8, batch_size=16, device="cpu",
                     dtype="float64")
SAME = [Hyperparams(lr=0.05, momentum=0.9, lr_decay=0.5, activation="tanh", gate_bias=-1.0,
                    seed=1),
        Hyperparams(lr=0.1, momentum=0.5, lr_decay=0.9, activation="tanh", gate_bias=-2.0,
                    seed=2),
        Hyperparams(lr=0.02, momentum=0.0, lr_decay=1.0, activation="tanh", gate_bias=-3.0,
                    seed=3)]
# relu and tanh side by side, as train() orders a pack (each activation one run of trials)
MIXED = [replace(SAME[0], activation="relu"), replace(SAME[1], activation="relu"), SAME[2]]
PACKS = {"one-activation": SAME, "mixed-activations": MIXED}


def tiny(n: int = 96, seed: int = 0) -> Dataset:
    """Learnable 4×4 images: the label is a fixed function of the pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n + 32, 1, 4, 4, generator=g, dtype=torch.float64)
    y = (x.flatten(1) @ torch.randn(16, 10, generator=g, dtype=torch.float64)).argmax(1)
    return Dataset("tiny", x[:n], y[:n], x[n:], y[n:], 10)


def batches(data: Dataset, k: int, steps: int, size: int = 16
            ) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(7)
    out = []
    for s in range(steps):
        idx = torch.randint(0, len(data.y_train), (k, size), generator=g)
        out.append((data.x_train[idx], data.y_train[idx], s / steps))
    return out


class Reference:
    """One trial the textbook way: its net from ``models/``, its own ``torch.optim.SGD``."""

    def __init__(self, net: torch.nn.Module, lr: float, momentum: float, decay: float) -> None:
        self.net, self.lr, self.decay = net, lr, decay
        self.opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)

    def step(self, x: torch.Tensor, y: torch.Tensor, exponent: float
             ) -> tuple[float, dict[str, torch.Tensor]]:
        for group in self.opt.param_groups:
            group["lr"] = self.lr * self.decay**exponent
        loss = F.cross_entropy(self.net(x), y)
        self.opt.zero_grad()
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in self.net.named_parameters()}
        self.opt.step()
        return loss.item(), grads

    @torch.no_grad()
    def objective(self, data: Dataset) -> float:
        """The trial's cross-entropy over the whole training set, in eval mode."""
        self.net.eval()
        ce = F.cross_entropy(self.net(data.x_train).double(), data.y_train).item()
        self.net.train()
        return ce


def references(trials: list[Hyperparams], data: Dataset) -> list[Reference]:
    return [Reference(build_model(CONFIG, hp, data).double(), hp.lr, hp.momentum, hp.lr_decay)
            for hp in trials]


def close(a: torch.Tensor | float, b: torch.Tensor | float) -> None:
    torch.testing.assert_close(torch.as_tensor(a, dtype=torch.float64),
                               torch.as_tensor(b, dtype=torch.float64), rtol=REL, atol=ABS)


# -- the CUDA graph, emulated on the CPU ------------------------------------------------------


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


class _Recorder(TorchDispatchMode):
    """Records every ATen op run under it, and keeps a copy of each tensor an op writes before
    its first write, so the capture can put them back."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []
        self.written: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        for i, arg in enumerate(func._schema.arguments):
            if arg.alias_info is not None and arg.alias_info.is_write:
                value = args[i] if i < len(args) else kwargs.get(arg.name)
                for t in _tensors(value):
                    self.written.setdefault(id(t), (t, t.detach().clone()))
        out = func(*args, **kwargs)
        self.ops.append((func, args, kwargs, out))
        return out


class EmulatedGraph:
    """``torch.cuda.CUDAGraph`` on the CPU (see the module's docstring)."""

    made: list[EmulatedGraph] = []

    def __init__(self) -> None:
        self.ops: list[tuple] = []
        self.replays = 0
        EmulatedGraph.made.append(self)

    def replay(self) -> None:
        now: dict[int, torch.Tensor] = {}  # a captured tensor -> this replay's

        def sub(value: object) -> object:
            if isinstance(value, torch.Tensor):
                return now.get(id(value), value)
            if isinstance(value, list | tuple):
                return type(value)(sub(v) for v in value)
            return value

        captured: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for func, args, kwargs, out in self.ops:
                new = func(*sub(args), **{k: sub(v) for k, v in kwargs.items()})
                for old, fresh in zip(_tensors(out), _tensors(new), strict=True):
                    if old is not fresh:
                        now[id(old)], captured[id(old)] = fresh, old
            for key, old in captured.items():  # a graph writes its outputs in place
                if old._base is None:  # views (of inputs, of weights) follow their base
                    old.copy_(now[key])
        self.replays += 1


class _Capture:
    """``torch.cuda.graph(g)``: records the block's ops into ``g`` and undoes their writes."""

    def __init__(self, graph: EmulatedGraph, **_: object) -> None:
        self.graph, self.recorder = graph, _Recorder()

    def __enter__(self) -> None:
        self.recorder.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.recorder.__exit__(*exc)
        with torch.no_grad():
            for tensor, before in self.recorder.written.values():
                tensor.copy_(before)
        self.graph.ops = self.recorder.ops


class _Stream:
    def __init__(self, *_: object, **__: object) -> None:
        pass

    def wait_stream(self, other: object) -> None:
        pass


class _StreamContext:
    def __init__(self, stream: object) -> None:
        pass

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def emulated_cuda_graphs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmulatedGraph]]:
    """``torch.cuda``'s graph and stream calls on the CPU, and the mode check told the pack
    is on a CUDA device; yields the graphs made."""
    real_resolve = compiled_module.resolve_mode
    monkeypatch.setattr(compiled_module, "resolve_mode",
                        lambda mode, device: real_resolve(mode, torch.device("cuda")))
    monkeypatch.setattr(torch.cuda, "CUDAGraph", EmulatedGraph)
    monkeypatch.setattr(torch.cuda, "graph", _Capture)
    monkeypatch.setattr(torch.cuda, "Stream", _Stream)
    monkeypatch.setattr(torch.cuda, "stream", _StreamContext)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a, **k: _Stream())
    EmulatedGraph.made = []
    yield EmulatedGraph.made


def needs_a_compiler() -> None:
    if shutil.which("g++") is None and shutil.which("c++") is None:
        parts.missing("a C++ compiler", "inductor on the CPU needs g++ or c++")


def fast_path(mode: str, engine: PackedEngine) -> PackedEngine | CompiledPackedEngine:
    """``engine`` behind the fast path ``mode``, checked to be that mode."""
    if mode == "pack":
        fast = compile_engine(engine, "auto")  # on a CPU: the engine itself
        assert fast is engine
        return fast
    if mode == "inductor":
        fast = compile_engine(engine, "inductor", backend=INDUCTOR)
    else:
        fast = compile_engine(engine, "cudagraph")
    assert isinstance(fast, CompiledPackedEngine)
    assert fast.mode == ("inductor" if mode == "inductor" else "cudagraph")
    return fast


class _CountingInductor:
    """Inductor itself, counting the graphs it compiles: a test of the inductor path shows
    that inductor really compiled its step."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, graph: torch.fx.GraphModule, example_inputs: list) -> object:
        self.graphs += 1
        return torch._dynamo.lookup_backend("inductor")(graph, example_inputs)


INDUCTOR = _CountingInductor()


def inner(fast: PackedEngine | CompiledPackedEngine) -> PackedEngine:
    return fast.engine if isinstance(fast, CompiledPackedEngine) else fast


MODES = ["pack", "cudagraph-emulated",
         pytest.param("inductor", marks=pytest.mark.slow)]


@pytest.fixture
def mode_env(request: pytest.FixtureRequest) -> str:
    mode = request.param
    if mode == "cudagraph-emulated":
        request.getfixturevalue("emulated_cuda_graphs")
    if mode == "inductor":
        needs_a_compiler()
        torch.compiler.reset()
        INDUCTOR.graphs = 0
    return mode


# -- FC packs ---------------------------------------------------------------------------------


# Inductor compiles for a minute on a loaded 2-core CPU (cold cache): the mixed pack only.
STEP_CASES = [("pack", "one-activation"), ("pack", "mixed-activations"),
              ("cudagraph-emulated", "one-activation"), ("cudagraph-emulated", "mixed-activations"),
              pytest.param("inductor", "mixed-activations", marks=pytest.mark.slow)]


@pytest.mark.parametrize(("mode_env", "pack"), STEP_CASES, indirect=["mode_env"])
def test_steps_match_the_reference(mode_env: str, pack: str) -> None:
    """Losses at every step, each trial's gradients (the momentum buffers after the first
    step hold exactly them), its weights after the last step, its objective."""
    trials, data = PACKS[pack], tiny()
    engine, _ = build_engine(CONFIG, trials, data, packed=True)
    assert isinstance(engine, PackedEngine)
    fast, refs = fast_path(mode_env, engine), references(trials, data)
    steps = batches(data, len(trials), 10)
    for s, (xb, yb, exponent) in enumerate(steps):
        losses, _ = fast.step(xb, yb, exponent)
        seen = [ref.step(xb[i], yb[i], exponent) for i, ref in enumerate(refs)]
        close(losses, torch.tensor([loss for loss, _ in seen], dtype=torch.float64))
        if s == 0:
            for i, (_, grads) in enumerate(seen):
                buffers = inner(fast).pack.trial_state_dict(i, inner(fast).bufs)
                for name, grad in grads.items():
                    close(buffers[name], grad)
    for i, ref in enumerate(refs):
        weights = inner(fast).pack.trial_state_dict(i)
        for name, value in ref.net.state_dict().items():
            close(weights[name], value)
    objective, _ = fast.evaluate(data.x_train, data.y_train)
    close(objective, torch.tensor([ref.objective(data) for ref in refs], dtype=torch.float64))
    # the trials differ, so agreement is no accident of identical runs
    assert len({round(float(v), 6) for v in objective}) == len(trials)
    if mode_env == "cudagraph-emulated":
        (graph,) = EmulatedGraph.made
        assert graph.ops and graph.replays == len(steps) - 2  # 2 warm-up steps, then replays
    if mode_env == "inductor":
        assert INDUCTOR.graphs > 0


@pytest.mark.parametrize("mode_env", MODES, indirect=True)
def test_a_whole_run_has_the_reference_objective(mode_env: str) -> None:
    """fit() through the fast path gives every trial the objective, accuracy and weights of
    its own run on the reference single engine (FCNet and torch.optim.SGD)."""
    data = tiny()
    engine, _ = build_engine(CONFIG, MIXED, data, packed=True)
    assert isinstance(engine, PackedEngine)
    ours = fit(fast_path(mode_env, engine), data, [hp.seed for hp in MIXED], epochs=3,
               batch_size=16)
    if mode_env == "inductor":
        assert INDUCTOR.graphs > 0
    for hp, got in zip(MIXED, ours, strict=True):
        single = SingleEngine(build_model(CONFIG, hp, data).double(), hp.lr, hp.momentum,
                              hp.lr_decay)
        (want,) = fit(single, data, [hp.seed], epochs=3, batch_size=16)
        assert len(got.epochs) == len(want.epochs) == 3
        for a, b in zip(got.epochs, want.epochs, strict=True):
            close(a.train_loss, b.train_loss)
            close(a.running_loss, b.running_loss)
            assert a.train_accuracy == b.train_accuracy and a.test_accuracy == b.test_accuracy
        assert got.best_epoch == want.best_epoch and got.test_accuracy == want.test_accuracy
        assert got.best_train_loss == pytest.approx(want.best_train_loss, rel=REL)
        for name, value in want.state_dict.items():
            close(got.state_dict[name], value)


def test_the_cuda_graph_path_freezes_in_place_and_steps_other_shapes_eagerly(
    emulated_cuda_graphs: list[EmulatedGraph],
) -> None:
    """After capture, a frozen trial stays frozen in the replays (freeze writes in place), its
    pack-mates go on as their references; a batch of another shape steps eagerly and leaves
    the graph as it was; returned losses are copies, not the graph's output buffers."""
    data = tiny()
    engine, _ = build_engine(CONFIG, SAME, data, packed=True)
    assert isinstance(engine, PackedEngine)
    fast, refs = fast_path("cudagraph-emulated", engine), references(SAME, data)
    returned, expected = [], []
    for s, (xb, yb, exponent) in enumerate(batches(data, 3, 8)):
        if s == 4:
            fast.freeze(1)
        losses, _ = fast.step(xb, yb, exponent)
        returned.append(losses)
        expected.append([ref.step(xb[i], yb[i], exponent)[0] if i != 1 or s < 4 else None
                         for i, ref in enumerate(refs)])
    (graph,) = emulated_cuda_graphs
    assert graph.replays == 6
    for s, (got, want) in enumerate(zip(returned, expected, strict=True)):
        for i in (0, 2):  # still each step's own values
            close(got[i], want[i])
        if s >= 4:  # frozen: zero weights, zero rate; all-zero logits cost ln(10)
            close(got[1], math.log(10))
    assert inner(fast) is engine  # the state the graph steps is the engine's
    frozen = engine.pack.trial_state_dict(1)
    assert all(torch.count_nonzero(v) == 0 for v in frozen.values())
    odd_x, odd_y, _ = batches(data, 3, 1, size=5)[0]
    losses, _ = fast.step(odd_x, odd_y, 0.5)
    assert graph.replays == 6  # not replayed: another shape
    close(losses[0], refs[0].step(odd_x[0], odd_y[0], 0.5)[0])
    close(losses[2], refs[2].step(odd_x[2], odd_y[2], 0.5)[0])


# -- conv packs -------------------------------------------------------------------------------

CONV_RECIPE = replace(CAFFE_MNIST, milestones=(4, 8))  # both milestones inside 10 steps
CONV_TRIALS = [
    Hyperparams.for_model("mnist-highway-10", lr=0.05, momentum=0.9, weight_decay=0.001,
                          gate_bias=-1.0, seed=1),
    Hyperparams.for_model("mnist-highway-10", lr=0.02, momentum=0.5, weight_decay=0.01,
                          gate_bias=-2.0, seed=2),
]


def conv_net(hp: Hyperparams) -> ConvHighwayNet:
    config = preset("mnist-highway-10", width=2, gate_bias=hp.gate_bias, dropout=False)
    return ConvHighwayNet(config, init_generator(hp.seed)).double()


def test_a_conv_pack_steps_as_its_reference_nets() -> None:
    """A pack of grouped convs against each trial's ConvHighwayNet under the recipe's SGD
    (Nesterov, weight decay, bias and head multipliers, the multistep rate): losses at every
    step, each trial's update direction (gradient plus decay, the momentum buffer after the
    first step) and its weights after ten steps. Dropout off: a pack draws its own masks."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, 2, 6, 1, 28, 28, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (10, 2, 6), generator=g)
    nets = [conv_net(hp) for hp in CONV_TRIALS]
    pack = PackedConvNet.from_state_dicts(nets[0].config, [n.state_dict() for n in nets])
    fast = PackedConvEngine(pack, CONV_RECIPE, [hp.lr for hp in CONV_TRIALS],
                            [hp.momentum for hp in CONV_TRIALS],
                            [hp.weight_decay for hp in CONV_TRIALS],
                            [hp.lr_decay for hp in CONV_TRIALS])
    refs = [SingleEngine(net, hp.lr, hp.momentum, hp.lr_decay, recipe=CONV_RECIPE,
                         weight_decay=hp.weight_decay) for net, hp in zip(nets, CONV_TRIALS,
                                                                          strict=True)]
    for s in range(10):
        losses, _ = fast.step(x[s], y[s], s / 10)
        want = [ref.step(x[s, i : i + 1], y[s, i : i + 1], s / 10)[0] for i, ref in
                enumerate(refs)]
        close(losses, torch.cat(want))
        if s == 0:
            for i, ref in enumerate(refs):
                buffers = pack.trial_state_dict(i, fast.bufs)
                for name, p in ref.model.named_parameters():
                    close(buffers[name], ref.optimizer.state[p]["momentum_buffer"])
    for i, ref in enumerate(refs):
        weights = pack.trial_state_dict(i)
        for name, value in ref.model.state_dict().items():
            close(weights[name], value)
    assert fast.lr(0.0)[0].item() == pytest.approx(0.05 / 100)  # past both milestones
