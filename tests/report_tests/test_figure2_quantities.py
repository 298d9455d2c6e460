"""Figure 2 shows what its panel titles name, checked by quantity on a net whose insides are
known: one layer's gates forced open by their bias (T = 1, so y = H), one forced shut (T = 0,
so y = x: the stripes), two with gates that depend on the input. Every panel of the drawn
figure is compared with T, H and y = H·T + x·(1 − T) computed here, by hand, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwsearch.models import FCConfig
from hwsearch.models.fc import FCNet
from hwsearch.report import figures
from hwsearch.report.data import bias_change_data, inner_workings_data

WIDTH, DEPTH, N, ONE = 6, 5, 30, 7  # 4 highway layers (the net's layers 2-5); example #7
OPEN, SHUT = 0, 1  # the highway layers whose gates the bias forces


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def known() -> tuple[FCNet, torch.Tensor]:
    """The net, float64, and N inputs; layer OPEN's gate bias is +40, layer SHUT's −40 (gate
    weights 0), the others have input-dependent gates with a different bias per block."""
    gen = torch.Generator().manual_seed(3)
    net = FCNet(FCConfig(kind="highway", depth=DEPTH, width=WIDTH, activation="tanh",
                         gate_bias=-1.0), gen).double().eval()
    with torch.no_grad():
        for i, layer in enumerate(net.layers):
            layer.h.bias.copy_(torch.linspace(-0.5, 0.5, WIDTH))
            if i in (OPEN, SHUT):
                layer.t.weight.zero_()
                layer.t.bias.fill_(40.0 if i == OPEN else -40.0)
            else:
                layer.t.bias.copy_(torch.linspace(-2.0, 2.0, WIDTH) + i)
    x = torch.rand(N, 1, 28, 28, generator=gen, dtype=torch.float64)
    return net, x


def by_hand(net: FCNet, x: torch.Tensor) -> dict[str, np.ndarray]:
    """T, H and y of every highway layer for every input, (L, N, W), from the weights alone."""
    sd = {k: v.numpy() for k, v in net.state_dict().items()}
    h = np.tanh(x.flatten(1).numpy() @ sd["first.linear.weight"].T + sd["first.linear.bias"])
    gates, states, outputs = [], [], []
    for i in range(DEPTH - 1):
        p = f"layers.{i}."
        block = np.tanh(h @ sd[p + "h.weight"].T + sd[p + "h.bias"])
        gate = _sigmoid(h @ sd[p + "t.weight"].T + sd[p + "t.bias"])
        h = block * gate + h * (1.0 - gate)  # y = H·T + x·(1 − T)
        gates.append(gate)
        states.append(block)
        outputs.append(h)
    return {"T": np.stack(gates), "H": np.stack(states), "y": np.stack(outputs),
            "bias": np.stack([sd[f"layers.{i}.t.bias"] for i in range(DEPTH - 1)])}


def panels(net: FCNet, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The drawn figure's heatmaps by the quantity their title names."""
    data = inner_workings_data(net, x, x[ONE : ONE + 1], sample_index=ONE, seed=5)
    fig = figures.inner_workings(data)
    assert fig is not None
    names = {"Gate biases": "bias", "Mean gate T": "mean T", "Gate T, example": "T",
             "Block outputs y": "y", "Extra: states H(x)": "H"}
    out = {}
    for trace in fig.data:
        (quantity,) = [q for title, q in names.items() if trace.name.startswith(title)]
        out[quantity] = np.asarray(trace.z, dtype=np.float64)
        assert list(trace.y) == [2, 3, 4, 5]  # rows: the highway layers' numbers in the net
        assert list(trace.x) == list(range(WIDTH))  # columns: blocks
    assert set(out) == set(names.values())
    return out


def test_each_panel_is_the_quantity_its_title_names(known: tuple[FCNet, torch.Tensor]) -> None:
    net, x = known
    want, got = by_hand(net, x), panels(net, x)
    tol = {"rtol": 1e-9, "atol": 1e-12}
    np.testing.assert_allclose(got["bias"], want["bias"], **tol)
    np.testing.assert_allclose(got["mean T"], want["T"].mean(axis=1), **tol)
    np.testing.assert_allclose(got["T"], want["T"][:, ONE], **tol)
    np.testing.assert_allclose(got["y"], want["y"][:, ONE], **tol)
    np.testing.assert_allclose(got["H"], want["H"][:, ONE], **tol)


def test_the_known_insides_show(known: tuple[FCNet, torch.Tensor]) -> None:
    """What the forced gates make visible: open, the output is the block state; shut, the
    output is the layer's input (a stripe down the layers); elsewhere one example's gates
    differ from their mean, so no panel can stand in for another."""
    net, x = known
    got = panels(net, x)
    np.testing.assert_allclose(got["T"][OPEN], 1.0, atol=1e-12)
    np.testing.assert_allclose(got["T"][SHUT], 0.0, atol=1e-12)
    np.testing.assert_allclose(got["y"][OPEN], got["H"][OPEN], atol=1e-12)
    np.testing.assert_allclose(got["y"][SHUT], got["y"][OPEN], atol=1e-12)
    assert np.abs(got["H"][SHUT] - got["y"][SHUT]).max() > 0.05
    assert np.abs(got["mean T"][2:] - got["T"][2:]).max() > 1e-3
    np.testing.assert_allclose(got["bias"][OPEN], 40.0)
    np.testing.assert_allclose(got["bias"][2], np.linspace(-2.0, 2.0, WIDTH) + 2)


def test_titles_name_the_example_and_the_sample(known: tuple[FCNet, torch.Tensor]) -> None:
    net, x = known
    data = inner_workings_data(net, x, x[ONE : ONE + 1], sample_index=ONE, seed=5)
    assert (data.n_samples, data.sample_index, data.seed) == (N, ONE, 5)
    titles = [t.name for t in figures.inner_workings(data).data]
    assert titles == ["Gate biases (init -1)", f"Mean gate T ({N} ex.)", f"Gate T, example #{ONE}",
                      f"Block outputs y, #{ONE}", f"Extra: states H(x), #{ONE}"]


def test_the_bias_claims_source_is_each_blocks_final_bias(known: tuple[FCNet, torch.Tensor]
                                                          ) -> None:
    """The gate-bias check counts, block by block, the final transform-gate biases below the
    initial one (−1 here)."""
    net, _ = known
    change = bias_change_data(net)
    biases = by_hand(net, torch.zeros(1, 784, dtype=torch.float64))["bias"].ravel()
    np.testing.assert_array_equal(change.final, biases)
    assert change.initial == -1.0
    assert change.decreased == int((biases < -1.0).sum()) == WIDTH  # the shut layer's
    assert change.fraction_decreased == pytest.approx(change.decreased / biases.size)
    assert change.mean_change == pytest.approx(float((biases + 1.0).mean()))
