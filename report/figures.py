"""Plotly drawings of the report's data. Drawing only: every number comes from ``report.data``.

Plotly is imported inside the functions, so the data functions (and their tests) do not need it.
A function returns None when its data is empty; the page then says the figure lacks data.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsearch.training import HIGHWAY, PLAIN

from .checks import epochs_text
from .data import Ecdf, Figure1Data, Importances, SliceData

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from .nets import InnerWorkings, LesionData

COLORS = {PLAIN: "#1f77b4", HIGHWAY: "#2ca02c"}  # as in Fig. 1 of arXiv:1505.00387
NOTE_HEIGHT = {PLAIN: 0.95, HIGHWAY: 0.85}  # where a panel says a curve is missing
DIVERGED = "#d62728"
TEMPLATE = "plotly_white"
FONT = {"family": "Helvetica, Arial, sans-serif", "size": 12}


def _layout(fig: go.Figure, height: int, **kwargs: Any) -> go.Figure:
    fig.update_layout(template=TEMPLATE, height=height, font=FONT,
                      margin={"l": 60, "r": 30, "t": 50, "b": 50}, **kwargs)
    return fig


def _panel_note(fig: go.Figure, col: int, text: str, y: float = 0.5, color: str = "#666"
                ) -> None:
    """Text inside subplot ``col``, placed in paper coordinates: plotly.js draws no axes for a
    subplot without traces, and annotations tied to such axes land in the wrong place."""
    axis = "" if col == 1 else str(col)
    xd, yd = fig.layout[f"xaxis{axis}"].domain, fig.layout[f"yaxis{axis}"].domain
    fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", xanchor="center",
                       x=(xd[0] + xd[1]) / 2, y=yd[0] + y * (yd[1] - yd[0]),
                       font={"color": color})


def _hover_params(params: dict[str, Any]) -> str:
    return "<br>".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items()
    )


def figure1(data: Figure1Data, epochs: int | None = None) -> go.Figure | None:
    """Best training curves per depth, plain against highway, log y, one panel per depth;
    titled with the runs' ``epochs``, so a short run's figure says what it is."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not data.panels or all(p.plain is None and p.highway is None for p in data.panels):
        return None
    fig = make_subplots(rows=1, cols=len(data.panels), shared_yaxes=True,
                        subplot_titles=[f"{p.depth} layers" for p in data.panels],
                        horizontal_spacing=0.03)
    shown: set[str] = set()
    for col, panel in enumerate(data.panels, start=1):
        for model in (PLAIN, HIGHWAY):
            top = getattr(panel, f"{model}_top")
            if top is not None:  # the NeurIPS version: mean and spread of the top runs
                fig.add_trace(go.Scatter(
                    x=[*top.epochs, *top.epochs[::-1]], y=[*top.high, *top.low[::-1]],
                    fill="toself", mode="lines", line={"width": 0}, fillcolor=COLORS[model],
                    opacity=0.18, name=f"{model}: top {top.n} runs, lowest to highest",
                    legendgroup=f"{model}-top", showlegend=f"{model}-top" not in shown,
                    hoverinfo="skip",
                ), row=1, col=col)
                fig.add_trace(go.Scatter(
                    x=top.epochs, y=top.mean, mode="lines", name=f"{model}: top {top.n} mean",
                    legendgroup=f"{model}-top", showlegend=f"{model}-top" not in shown,
                    line={"color": COLORS[model], "width": 1.5, "dash": "dot"},
                    hovertemplate=(f"{model}, {panel.depth} layers, mean of the top {top.n} "
                                   f"of {top.of}<br>epoch %{{x}}: CE %{{y:.4g}}<extra></extra>"),
                ), row=1, col=col)
                shown.add(f"{model}-top")
            curve = getattr(panel, model)
            if curve is None:
                _panel_note(fig, col, f"no complete {model} trial",
                            NOTE_HEIGHT[model], COLORS[model])
                continue
            fig.add_trace(go.Scatter(
                x=curve.epochs, y=curve.losses, mode="lines+markers", name=model,
                legendgroup=model, showlegend=model not in shown,
                line={"color": COLORS[model], "width": 2}, marker={"size": 5},
                hovertemplate=(f"{model}, {panel.depth} layers, trial {curve.trial}<br>"
                               "epoch %{x}: CE %{y:.4g}<br>" + _hover_params(curve.params)
                               + "<extra></extra>"),
            ), row=1, col=col)
            shown.add(model)
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    last = max((max(c.epochs, default=1) for p in data.panels for c in (p.plain, p.highway)
                if c is not None), default=1)
    fig.update_xaxes(tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(type="log", row=1, col=1, title_text="training cross-entropy")
    fig.update_yaxes(type="log")
    title = f"Figure 1 after {epochs_text(epochs)}" + (" (first steps only)" if epochs == 1
                                                        else "")
    _layout(fig, 410, legend={"orientation": "h", "x": 0, "y": -0.2})
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}},
                      margin={"l": 60, "r": 30, "t": 80, "b": 50})
    return fig


def _heatmap_panels(data: InnerWorkings) -> list[tuple[str, np.ndarray | None, dict[str, Any]]]:
    # Biases: red below the initial value, blue above, so "most decreased" shows at a glance.
    spread = float(np.abs(data.biases - data.initial_bias).max()) if data.biases.size else 0.0
    spread = spread or 1.0
    around_initial = {"colorscale": "RdBu", "zmin": data.initial_bias - spread,
                      "zmax": data.initial_bias + spread}
    around_zero = {"colorscale": "RdBu", "zmid": 0.0}
    gates = {"colorscale": "Viridis"}  # own range: mean gates of a trained net are often < 0.1
    one = f"#{data.sample_index}"
    return [
        (f"Gate biases (init {data.initial_bias:.3g})", data.biases, around_initial),
        (f"Mean gate T ({data.n_samples} ex.)", data.mean_gates, gates),
        (f"Gate T, example {one}", data.sample_gates, gates),
        (f"Block outputs y, {one}", data.sample_outputs, around_zero),
        (f"Extra: states H(x), {one}", data.sample_states, around_zero),
    ]


def inner_workings(data: InnerWorkings) -> go.Figure | None:
    """The paper's Figure 2: four (layer × block) heatmaps, each with its own colour bar, and a
    fifth, labelled extra, of the block states H(x)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if data.biases.size == 0:
        return None
    panels = _heatmap_panels(data)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _, _ in panels],
                        horizontal_spacing=0.06)
    blocks = list(range(data.biases.shape[1]))
    for col, (title, z, style) in enumerate(panels, start=1):
        axis = "" if col == 1 else str(col)
        domain = fig.layout[f"xaxis{axis}"].domain
        if z is None:
            _panel_note(fig, col, "no training data")
        else:
            fig.add_trace(go.Heatmap(
                z=z, x=blocks, y=data.layers, name=title,
                colorbar={"x": domain[1] + 0.005, "thickness": 10, "len": 0.9},
                hovertemplate="layer %{y}, block %{x}: %{z:.3g}<extra>" + title + "</extra>",
                **style,
            ), row=1, col=col)
        fig.update_xaxes(title_text="block", row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_yaxes(title_text="layer (depth)", row=1, col=1)
    return _layout(fig, 460)


def lesion(data: LesionData) -> go.Figure | None:
    """Training CE with one layer's gate shut (points) against the intact net (dashed line)."""
    import plotly.graph_objects as go

    if not data.layers:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=data.layers, y=data.losses, mode="markers+lines", name="layer lesioned (T = 0)",
        line={"color": COLORS[HIGHWAY], "width": 1}, marker={"size": 7},
        hovertemplate="layer %{x} lesioned: CE %{y:.4g}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=[data.layers[0], data.layers[-1]], y=[data.unlesioned] * 2, mode="lines",
        name=f"no lesion ({data.unlesioned:.4g})", line={"color": "black", "dash": "dash"},
        hoverinfo="skip",
    ))
    fig.update_xaxes(title_text="lesioned layer")
    fig.update_yaxes(type="log", title_text=f"training cross-entropy ({data.n_samples} samples)")
    return _layout(fig, 380, legend={"orientation": "h", "x": 0, "y": 1.12})


def slices(data: SliceData) -> go.Figure | None:
    """Each trial's best CE against each hyperparameter; diverged trials drawn above as x."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not data.params or (data.complete == 0 and data.diverged == 0):
        return None
    fig = make_subplots(rows=1, cols=len(data.params), shared_yaxes=True,
                        subplot_titles=[p.name for p in data.params], horizontal_spacing=0.03)
    all_y = [y for p in data.params for y in p.y if y > 0]
    top = max(all_y) * 2 if all_y else 1.0
    for col, p in enumerate(data.params, start=1):
        fig.add_trace(go.Scatter(
            x=p.x, y=p.y, mode="markers", name="complete", legendgroup="complete",
            showlegend=col == 1, marker={"color": COLORS[HIGHWAY], "size": 7, "opacity": 0.8},
            customdata=p.trials,
            hovertemplate=f"trial %{{customdata}}: {p.name} = %{{x}}<br>best CE %{{y:.4g}}"
                          "<extra></extra>",
        ), row=1, col=col)
        if p.diverged_x:
            fig.add_trace(go.Scatter(
                x=p.diverged_x, y=[top] * len(p.diverged_x), mode="markers",
                name="diverged (drawn at the top)", legendgroup="diverged",
                showlegend=col == 1, marker={"color": DIVERGED, "symbol": "x", "size": 8},
                hovertemplate=f"diverged: {p.name} = %{{x}}<extra></extra>",
            ), row=1, col=col)
        if p.log:
            fig.update_xaxes(type="log", exponentformat="power", row=1, col=col)
        if p.categorical:
            fig.update_xaxes(type="category", categoryorder="category ascending", row=1, col=col)
    fig.update_yaxes(type="log")
    fig.update_yaxes(title_text="best training CE", row=1, col=1)
    return _layout(fig, 300, legend={"orientation": "h", "x": 0, "y": -0.25})


def importances(data: Importances) -> go.Figure | None:
    import plotly.graph_objects as go

    if not data.names:
        return None
    fig = go.Figure(go.Bar(
        x=data.values[::-1], y=data.names[::-1], orientation="h",
        marker={"color": COLORS[HIGHWAY]},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    fig.update_xaxes(title_text="importance (sums to 1)", range=[0, 1])
    sampled = f" (random) of {data.complete}" if data.complete > data.trials else ""
    fig.update_yaxes(title_text=f"{data.method}, {data.trials}{sampled} complete trials")
    return _layout(fig, 280, title={"text": "Importances", "x": 0.02})


def ecdf(data: Ecdf) -> go.Figure | None:
    import plotly.graph_objects as go

    if not data.values:
        return None
    fig = go.Figure(go.Scatter(
        x=[data.values[0], *data.values], y=[0.0, *data.fractions], mode="lines+markers",
        line={"shape": "hv", "color": COLORS[PLAIN]}, marker={"size": 5},
        hovertemplate="%{y:.0%} of complete trials ended at CE ≤ %{x:.4g}<extra></extra>",
    ))
    fig.update_xaxes(type="log", title_text="final training cross-entropy")
    fig.update_yaxes(title_text=f"fraction of {len(data.values)} complete", range=[0, 1.05])
    return _layout(fig, 280, title={"text": "Spread of outcomes", "x": 0.02})
