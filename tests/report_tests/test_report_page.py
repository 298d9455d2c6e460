"""Figures and page assembly without training: empty data, escaping, an empty storage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hwsearch.report import ReportError, figures, write_report
from hwsearch.report.data import (
    Ecdf,
    Figure1Data,
    Importances,
    SliceData,
    ecdf_data,
    figure1_data,
    slice_data,
)
from hwsearch.report.nets import InnerWorkings, LesionData
from hwsearch.report.page import Page
from hwsearch.storage import open_storage
from hwtest.fake_trials import record, trial


def test_figures_without_data_are_none() -> None:
    assert figures.figure1(Figure1Data([])) is None
    assert figures.inner_workings(InnerWorkings([], np.zeros((0, 5)), -2.0, None, None, None,
                                                None, 0, 0, 0)) is None
    assert figures.lesion(LesionData([], [], 1.0, 0)) is None
    assert figures.slices(SliceData([], 0, 0)) is None
    assert figures.importances(Importances([], [], "", 0, "too few")) is None
    assert figures.ecdf(Ecdf([], [], 2, 0)) is None


def test_figure1_draws_one_log_panel_per_depth() -> None:
    records = [record("plain", 10, [trial(0, [2.0, 1.0])]),
               record("highway", 10, [trial(0, [1.0, 0.5])]),
               record("highway", 20, [trial(0, [1.0, 0.2])])]
    fig = figures.figure1(figure1_data(records))
    assert [t.name for t in fig.data] == ["plain", "highway", "highway"]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert [a.text for a in fig.layout.annotations if "no complete" in a.text] == [
        "no complete plain trial"]


def test_slices_use_a_log_axis_for_lr() -> None:
    trials = [trial(i, [1.0 + i]) for i in range(3)]
    fig = figures.slices(slice_data(trials))
    assert fig.layout.xaxis.type == "log"  # lr comes first
    assert fig.layout.xaxis2.type != "log"  # momentum
    assert figures.ecdf(ecdf_data(trials)).data[0].y[-1] == 1.0


def test_page_escapes_text_and_figure_json() -> None:
    import plotly.graph_objects as go

    page = Page("a <b> title")
    page.section("s", "Section <1>")
    page.paragraph("x < y & z")
    page.missing("no <data>")
    page.figure(go.Figure(layout={"title": {"text": "</script><script>alert(1)</script>"}}),
                "f", "caption", "lacking")
    page.figure(None, "g", "caption", "lacking <it>")
    out = page.render("/* plotly */")
    assert "<title>a &lt;b&gt; title</title>" in out and "x &lt; y &amp; z" in out
    assert "no &lt;data&gt;" in out and "lacking &lt;it&gt;" in out
    assert "alert" in out and "</script><script>alert" not in out
    blob = re.search(r'<script type="application/json" id="fig-f-json">(.*?)</script>', out, re.S)
    assert json.loads(blob[1])["layout"]["title"]["text"].startswith("</script>")
    assert out.count('class="plot"') == 1 and page.figure_count == 1


def test_an_empty_storage_gives_a_page_that_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(url).close()
    path = write_report(url, tmp_path / "out")
    text = path.read_text()
    assert path.name == "index.html"
    assert "holds no mnist study" in text
    assert "Figure 1 lacks data" in text and "Figure 2 lacks data" in text
    assert "The lesioning lacks data" in text and "No study to diagnose" in text
    assert text.count('<td class="not-measured">not measured</td>') == 6
    assert 'class="plot"' not in text


def test_an_unknown_study_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(url).close()
    with pytest.raises(ReportError, match="no mnist study named 'nope'"):
        write_report(url, tmp_path / "out", study="nope")


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hwsearch.cli import main

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_storage(url).close()
    assert main(["report", "--storage", url, "--out", str(tmp_path / "out"),
                 "--skip-data-figures"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "index.html")
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--storage", url, "--out", str(tmp_path / "out"), "--study", "nope",
              "--skip-data-figures"])
    assert exit_.value.code == 2
    assert "no mnist study named 'nope'" in capsys.readouterr().err


def _stored(url: str, curves: dict[tuple[str, int], list[float]]) -> None:
    """One study per (model, depth) holding one complete trial with that training curve, stored
    with its configuration as a launch records it."""
    import optuna

    from hwsearch.storage.records import STUDY_SPEC

    for (model, depth), losses in curves.items():
        r = record(model, depth, [trial(0, losses, model=model)], epochs=len(losses))
        study = optuna.create_study(study_name=r.name, storage=url)
        study.set_user_attr(STUDY_SPEC, r.spec)
        study.add_trial(r.trials[0])


def _descending(start: float, end: float, reach_at: int, epochs: int = 8) -> list[float]:
    return [start + (end - start) * min(1.0, e / reach_at) for e in range(1, epochs + 1)]


PAPER_LIKE = {  # plain worse with depth; highway better; highway there in 3 epochs, plain in 8
    ("plain", 10): _descending(2.0, 1e-3, 8), ("plain", 100): _descending(2.0, 0.3, 8),
    ("highway", 10): _descending(2.0, 1e-2, 3), ("highway", 100): _descending(2.0, 1.1e-3, 3),
}
UNLIKE = {  # plain better with depth; highway 100 far worse, and slow
    ("plain", 10): _descending(2.0, 0.3, 8), ("plain", 100): _descending(2.0, 0.2, 8),
    ("highway", 10): _descending(2.0, 1e-2, 8), ("highway", 100): _descending(2.0, 0.9, 8),
}


@pytest.mark.parametrize(("curves", "expected"), [
    (PAPER_LIKE, {"Plain networks get harder": "agrees", "Highway networks do not": "agrees",
                  "optimizes about as well": "agrees", "order of magnitude": "agrees",
                  "converge significantly faster": "agrees",
                  "transform-gate biases": "not measured"}),
    (UNLIKE, {"Plain networks get harder": "disagrees", "Highway networks do not": "disagrees",
              "optimizes about as well": "disagrees", "order of magnitude": "disagrees",
              "converge significantly faster": "disagrees",
              "transform-gate biases": "not measured"}),
], ids=["paper-like", "unlike"])
def test_the_page_gives_each_claim_its_verdict(curves: dict, expected: dict, tmp_path: Path
                                               ) -> None:
    """From stored studies to the page: each claim's verdict, found by the claim's name in the
    claims table (no weights are stored, so the gate-bias claim is not measured)."""
    from hwtest.report_page import ReportPage

    url = f"sqlite:///{tmp_path / 'r.db'}"
    _stored(url, curves)
    page = ReportPage(write_report(url, tmp_path / "out"))
    (table,) = page.verdicts()
    assert len(table) == len(expected)
    for phrase, verdict in expected.items():
        (claim,) = [c for c in table if phrase in c]
        assert table[claim] == verdict, (claim, table[claim])
    summary = page.summary()
    assert set(summary) == {f"mnist-{m}-d{d}" for m, d in curves}
    for (model, depth), losses in curves.items():
        row = summary[f"mnist-{model}-d{depth}"]
        assert float(row["Best training CE"]) == pytest.approx(min(losses), rel=1e-3)
        assert row["Best trial"] == "0" and row["Complete"] == "1"


@pytest.mark.parametrize(("epochs", "title"), [(1, "Figure 1 after 1 epoch (first steps only)"),
                                               (5, "Figure 1 after 5 epochs")])
def test_figure1_title_gives_the_runs_epochs(epochs: int, title: str) -> None:
    records = [record("plain", 10, [trial(0, [2.0])]), record("highway", 10, [trial(0, [1.0])])]
    fig = figures.figure1(figure1_data(records), epochs)
    assert fig.layout.title.text == title


def test_log_axes_read_as_numbers() -> None:
    """A decade or more: one tick per decade, labelled 1e-3 and so on; less: plain numbers."""
    wide = figures.log_axis([1e-3, 0.5, 2.0])
    assert wide["dtick"] == 1 and wide["exponentformat"] == "e"
    narrow = figures.log_axis([0.25, 0.31])
    assert "dtick" not in narrow and narrow["tickformat"] == ".2f"  # 0.25, 0.30
    assert figures.log_axis([2.309, 2.3165])["tickformat"] == ".3f"  # not 2.32 five times
    # The lesioning of the published 8-epoch grid (0.056 to 0.54) read 0.1 four times.
    for low, high in [(0.05634, 0.54), (0.25, 0.31), (2.309, 2.3165), (0.0123, 0.0456),
                      (3.2, 9.9), (0.0071, 0.069), (0.9, 8.5)]:
        fmt = figures.log_axis([low, high])["tickformat"]
        # where plotly puts a sub-decade log axis's ticks: 1..9 times each power of ten
        ticks = [d * 10.0**k for k in range(-4, 2) for d in range(1, 10)
                 if low <= d * 10.0**k <= high]
        labels = [format(t, fmt) for t in ticks]  # d3 ".2f" is Python's too
        assert len(set(labels)) == len(labels), (low, high, labels)
        assert all(float(label) > 0 for label in labels), (low, high, labels)
    records = [record("plain", 10, [trial(0, [2.0, 1e-3])]),
               record("highway", 10, [trial(0, [1.0, 0.5])])]
    fig = figures.figure1(figure1_data(records), 2, "mnist")
    assert fig.layout.yaxis.dtick == 1 and fig.layout.title.text == "Figure 1 after 2 epochs, mnist"


def test_figure2_panels_of_one_quantity_share_a_scale() -> None:
    import numpy as np

    from hwsearch.report.nets import InnerWorkings

    rng = np.random.default_rng(0)
    biases = rng.normal(-3, 0.5, (4, 6))
    data = InnerWorkings([2, 3, 4, 5], biases, -3.0, rng.uniform(0, 0.05, (4, 6)),
                         rng.uniform(0, 0.9, (4, 6)), rng.normal(0, 2, (4, 6)),
                         rng.normal(0, 1, (4, 6)), 100, 7, 0)
    fig = figures.inner_workings(data, "Figure 2: trial 1 of mnist-highway-d5")
    heat = list(fig.data)
    assert heat[1].zmax == heat[2].zmax and heat[1].zmin == heat[2].zmin == 0.0
    assert heat[3].zmax == heat[4].zmax == -heat[3].zmin
    assert [h.colorbar.title.text for h in heat] == ["bias", "T", "T", "y", "H"]
    assert fig.layout.title.text.startswith("Figure 2: trial 1 of mnist-highway-d5")
    for col, h in enumerate(heat[:-1], start=1):  # each bar sits before the next panel
        axis = "" if col == 1 else str(col)
        nxt = fig.layout[f"xaxis{col + 1}"].domain[0]
        assert fig.layout[f"xaxis{axis}"].domain[1] < h.colorbar.x < nxt
