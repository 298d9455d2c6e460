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


def log_axis(values: Any) -> dict[str, Any]:
    """A log axis whose tick labels read as numbers: one tick per decade labelled 1e-3, 1e-2
    when the data span a decade or more, else plain numbers (0.25, 0.3), never a bare digit
    between decades."""
    positive = [float(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    if positive and math.log10(max(positive) / min(positive)) >= 1:
        return {"type": "log", "dtick": 1, "exponentformat": "e", "showexponent": "all"}
    return {"type": "log", "tickformat": _narrow_format(positive)}


def _narrow_format(values: list[float]) -> str:
    """Enough decimals that ticks over ``values``' range differ: as many as the range's width
    needs (2.310, 2.315; not 2.32 twice), and as the smallest value's leading digit needs,
    where a log axis puts its ticks at 2, 3, … times a power of ten (0.06, 0.07; not 0.1
    four times); three significant digits when the range is unknown."""
    if len(values) < 2 or max(values) == min(values):
        return ".3~g"
    width = -math.floor(math.log10(max(values) - min(values)))
    leading = -math.floor(math.log10(min(values)))
    return f".{max(0, width, leading)}f"


def _hover_params(params: dict[str, Any]) -> str:
    return "<br>".join(
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items()
    )


def figure1(data: Figure1Data, epochs: int | None = None, dataset: str = "") -> go.Figure | None:
    """Best training curves per depth, plain against highway, log y, one panel per depth;
    titled with the dataset and the runs' ``epochs``, so a short run's figure says what it
    is. The bands go under every line (drawn first), so no band hides a curve."""
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
            if top is not None:  # the NeurIPS version: the spread of the top runs
                fig.add_trace(go.Scatter(
                    x=[*top.epochs, *top.epochs[::-1]], y=[*top.high, *top.low[::-1]],
                    fill="toself", mode="lines", line={"width": 0}, fillcolor=COLORS[model],
                    opacity=0.15, name=f"{model}: top {top.n} runs, lowest to highest",
                    legendgroup=f"{model}-top", showlegend=f"{model}-band" not in shown,
                    hoverinfo="skip",
                ), row=1, col=col)
                shown.add(f"{model}-band")
    for col, panel in enumerate(data.panels, start=1):
        for model in (PLAIN, HIGHWAY):
            top = getattr(panel, f"{model}_top")
            if top is not None:  # and their mean
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
    values = [v for p in data.panels for c in (p.plain, p.highway) if c is not None
              for v in c.losses]
    values += [v for p in data.panels for t in (p.plain_top, p.highway_top) if t is not None
               for v in (*t.low, *t.high)]
    fig.update_yaxes(**log_axis(values))
    fig.update_yaxes(row=1, col=1, title_text="training cross-entropy")
    title = (f"Figure 1 after {epochs_text(epochs)}"
             + (" (first steps only)" if epochs == 1 else "") + (f", {dataset}" if dataset else ""))
    _layout(fig, 410, legend={"orientation": "h", "x": 0, "y": -0.2})
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}},
                      margin={"l": 60, "r": 30, "t": 80, "b": 50})
    return fig


def _heatmap_panels(data: InnerWorkings) -> list[tuple[str, np.ndarray | None, dict[str, Any]]]:
    # Biases: red below the initial value, blue above, so "most decreased" shows at a glance.
    spread = float(np.abs(data.biases - data.initial_bias).max()) if data.biases.size else 0.0
    spread = max(spread, 0.01)  # an untrained net's biases differ only by rounding
    around_initial = {"colorscale": "RdBu", "zmin": data.initial_bias - spread,
                      "zmax": data.initial_bias + spread}
    around_zero = {"colorscale": "RdBu", "zmid": 0.0}
    # The two gate panels share one scale (mean gates of a trained net are often < 0.1, so
    # it runs to the larger of their maxima, not to 1); so do the outputs and the states.
    gate_top = max((float(np.nanmax(z)) for z in (data.mean_gates, data.sample_gates)
                    if z is not None and z.size), default=1.0) or 1.0
    gates = {"colorscale": "Viridis", "zmin": 0.0, "zmax": gate_top}
    reach = max((float(np.nanmax(np.abs(z))) for z in (data.sample_outputs, data.sample_states)
                 if z is not None and z.size), default=1.0) or 1.0
    around_zero = {"colorscale": "RdBu", "zmid": 0.0, "zmin": -reach, "zmax": reach}
    one = f"#{data.sample_index}"
    return [
        (f"Gate biases (init {data.initial_bias:.3g})", data.biases,
         {**around_initial, "bar": "bias"}),
        (f"Mean gate T ({data.n_samples} ex.)", data.mean_gates, {**gates, "bar": "T"}),
        (f"Gate T, example {one}", data.sample_gates, {**gates, "bar": "T"}),
        (f"Block outputs y, {one}", data.sample_outputs, {**around_zero, "bar": "y"}),
        (f"Extra: states H(x), {one}", data.sample_states, {**around_zero, "bar": "H"}),
    ]


def inner_workings(data: InnerWorkings, title: str = "") -> go.Figure | None:
    """The paper's Figure 2: four (layer × block) heatmaps and a fifth, labelled extra, of the
    block states H(x); each has a labelled colour bar in the gap before the next panel, and
    panels of one quantity share their scale. ``title`` says which net (dataset, depth)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if data.biases.size == 0:
        return None
    panels = _heatmap_panels(data)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for t, _, _ in panels],
                        horizontal_spacing=0.075, shared_yaxes=True)
    blocks = list(range(data.biases.shape[1]))
    for col, (name, z, style) in enumerate(panels, start=1):
        axis = "" if col == 1 else str(col)
        domain = fig.layout[f"xaxis{axis}"].domain
        style = dict(style)
        bar = style.pop("bar")
        if z is None:
            _panel_note(fig, col, "no training data")
        else:
            fig.add_trace(go.Heatmap(
                z=z, x=blocks, y=data.layers, name=name,
                colorbar={"x": domain[1] + 0.004, "xanchor": "left", "thickness": 8,
                          "len": 0.85, "tickfont": {"size": 9}, "nticks": 5,
                          "tickformat": ".3~g",
                          "title": {"text": bar, "side": "top", "font": {"size": 10}}},
                hovertemplate="layer %{y}, block %{x}: %{z:.3g}<extra>" + name + "</extra>",
                **style,
            ), row=1, col=col)
        fig.update_xaxes(title_text="block", row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col)
    fig.update_yaxes(title_text="layer (depth)", row=1, col=1)
    _layout(fig, 480 if title else 460)
    if title:
        fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}},
                          margin={"l": 60, "r": 40, "t": 80, "b": 50})
    return fig


def lesion(data: LesionData, title: str = "") -> go.Figure | None:
    """Training CE with one layer's gate shut (points) against the intact net (dashed line);
    ``title`` says which net (dataset, depth, epochs)."""
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
    fig.update_yaxes(**log_axis([*data.losses, data.unlesioned]),
                     title_text=f"training cross-entropy ({data.n_samples} samples)")
    if not title:
        return _layout(fig, 380, legend={"orientation": "h", "x": 0, "y": 1.12})
    _layout(fig, 400, legend={"orientation": "h", "x": 0, "y": 1.1})
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}},
                      margin={"l": 60, "r": 30, "t": 90, "b": 50})
    return fig


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
            fig.update_xaxes(**log_axis(p.x), row=1, col=col)
        if p.categorical:
            fig.update_xaxes(type="category", categoryorder="category ascending", row=1, col=col)
    fig.update_yaxes(**log_axis([*all_y, top]))
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
    fig.update_xaxes(**log_axis(data.values), title_text="final training cross-entropy")
    fig.update_yaxes(title_text=f"fraction of {len(data.values)} complete", range=[0, 1.05])
    return _layout(fig, 280, title={"text": "Spread of outcomes", "x": 0.02})
