"""The whole report from a small real search (trained here), and in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from plotly.offline import get_plotlyjs

from hwsearch.report import write_report
from hwsearch.report.data import figure1_data
from hwsearch.report.nets import cross_entropy, lesion_data, training_examples
from hwsearch.report.studies import best_trial, load_studies
from hwsearch.storage import open_storage
from hwsearch.storage.records import history
from hwsearch.storage.weights import load_trial_model
from hwsearch.training.data import Dataset
from hwtest import parts
from hwtest.browser import check_page, find_chromium, screenshot
from hwtest.report_page import ReportPage
from hwtest.search_builder import Search

pytestmark = pytest.mark.slow

# Figure 1, Figure 2, lesioning, and per study: slices, importances, spread of outcomes.
PLOTS = 3 + 4 * 3
MEASURED = {"agrees", "disagrees"}


@pytest.fixture(scope="module")
def page(search: Search, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(search.url, tmp_path_factory.mktemp("report"), data_dir=search.data_dir)


def test_the_search_was_stored_as_the_service_stores_it(search: Search) -> None:
    store = open_storage(search.url)
    records, unknown = load_studies(store, "mnist")
    assert unknown == [] and [r.name for r in records] == [  # by model, then depth
        "t-mnist-highway-d4", "t-mnist-highway-d10", "t-mnist-plain-d4", "t-mnist-plain-d10"]
    for r in records:
        assert len(r.trials) == 3 and r.limit_train == 1000
        for t in r.trials:  # light: no per-epoch records, the last intermediate value only
            whole = r.fetch(t)
            assert (t.number, t.state, t.value, t.params) == (
                whole.number, whole.state, whole.value, whole.params)
            assert t.user_attrs["outcome"] == whole.user_attrs["outcome"]
            assert t.user_attrs["outcome"] in ("completed", "diverged")
            assert history(t) == [] and len(history(whole)) == len(whole.intermediate_values)
            if whole.intermediate_values:
                last = max(whole.intermediate_values)
                assert t.intermediate_values == {last: whole.intermediate_values[last]}
    store.close()
    diverged = [t for r in records for t in r.trials if t.user_attrs["outcome"] == "diverged"]
    assert diverged and all(t.params["lr"] == 1.0 for t in diverged)


def test_figure1_uses_each_studys_best_trial(search: Search) -> None:
    store = open_storage(search.url)
    records, _ = load_studies(store, "mnist")
    store.close()
    data = figure1_data(records)
    assert [p.depth for p in data.panels] == [4, 10]
    for r in records:
        best = best_trial(r.trials)
        curve = getattr(data.panels[[4, 10].index(r.depth)], r.model)
        assert (curve.study, curve.trial, curve.best) == (r.name, best.number, best.value)
        assert min(curve.losses) == best.value and len(curve.epochs) == 2


def test_lesioning_the_stored_net(search: Search, mnist: Dataset) -> None:
    store = open_storage(search.url)
    records, _ = load_studies(store, "mnist")
    highway = next(r for r in records if r.name == "t-mnist-highway-d10")
    model = load_trial_model(store, best_trial(highway.trials))
    store.close()
    ex = training_examples(mnist.x_train, mnist.y_train, highway.limit_train)
    x, y = ex.x, ex.y
    data = lesion_data(model, x, y)
    assert data.layers == list(range(2, 11)) and data.n_samples == 1000
    assert data.unlesioned == pytest.approx(cross_entropy(model, x, y))
    assert len(set(data.losses)) > 1  # a trained net's layers differ


def test_the_page_is_self_contained_and_complete(page: Path) -> None:
    text = page.read_text()
    assert text.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]+src=", text)  # nothing to fetch
    assert text.count('class="plot"') == PLOTS
    for name in ("t-mnist-highway-d10", "t-mnist-highway-d4", "t-mnist-plain-d10",
                 "t-mnist-plain-d4"):
        assert f"<h3>{name} (" in text
    assert "No 50-layer highway study has a complete trial" in text
    assert "deepest highway net instead (10 layers, study t-mnist-highway-d10)" in text
    # depths 4 and 10, 2 epochs: the trend claims and the biases are measured; the claims
    # about 100 layers are not (no depth stands in); the speed is, from the 2 epochs' curves
    (verdicts,) = ReportPage(page).verdicts()
    expected = {"Plain networks get harder": MEASURED, "Highway networks do not": MEASURED,
                "transform-gate biases": MEASURED, "optimizes about as well": {"not measured"},
                "order of magnitude": {"not measured"},
                "converge significantly faster": MEASURED}
    assert len(verdicts) == len(expected)
    for phrase, allowed in expected.items():
        (claim,) = [c for c in verdicts if phrase in c]
        assert verdicts[claim] in allowed, (claim, verdicts[claim])
    assert "no complete trial of highway at depth 100" in text and " for 100" not in text
    assert "Figure 1 after 2 epochs" in text and "Runs of 2 epochs each." in text
    assert re.search(r"3 trials: \d complete, 1 diverged \(\d in their first epoch", text)


def test_without_data_the_page_says_so_and_still_draws_the_biases(
    search: Search, tmp_path: Path
) -> None:
    text = write_report(search.url, tmp_path, data_dir=None).read_text()
    assert "No training data given (data_dir)" in text
    assert 'id="fig-figure2"' in text and "no training data" in text
    assert "The lesioning lacks data" in text and 'id="fig-lesion"' not in text
    bad = write_report(search.url, tmp_path, data_dir=str(tmp_path / "nowhere")).read_text()
    assert "Training data unavailable" in bad and "does not exist" in bad


def test_study_restricts_the_diagnostics(search: Search, tmp_path: Path) -> None:
    text = write_report(search.url, tmp_path, study="t-mnist-plain-d4").read_text()
    assert "<h3>t-mnist-plain-d4 (" in text and "<h3>t-mnist-highway-d4 (" not in text
    assert "Search diagnostics: t-mnist-plain-d4" in text
    assert 'id="fig-figure1"' in text  # the papers' figures still use every study
    assert text.count('class="plot"') == 2 + 3  # figures 1 and 2 (biases only) + one study


def test_the_page_renders_in_a_real_browser(page: Path, tmp_path: Path) -> None:
    if find_chromium() is None:
        parts.missing("Chromium", "none on this machine (set HWSEARCH_CHROMIUM to a Chromium "
                      "binary)")
    result = check_page(page)
    assert result.errors == []
    assert result.status == "ok"
    assert result.drawn == result.total == PLOTS
    assert list(result.sections) == ["summary", "protocol", "figure1", "figure2", "lesion",
                                     "diagnostics"]
    shot = screenshot(page, tmp_path / "page.png", height=1600)
    with Image.open(shot) as im:
        assert im.size == (1400, 1600)
        assert len(im.convert("L").getcolors(1 << 16) or []) > 50  # not a blank page

