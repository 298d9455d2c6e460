"""One self-contained HTML page: text, tables, and plotly figures with plotly.js inlined once.

Figures travel as JSON in ``<script type="application/json">`` blocks and are drawn by one
loop, which then records on ``<html>`` how many plots drew and any JavaScript error
(``data-report-status``, ``data-plots-drawn``, ``data-errors``, ``data-sections``, and each
figure's box, ``data-figures``), so a headless browser can check the page without a screenshot
and crop one figure out of one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1360px;
       padding: 16px 20px 60px; color: #222; line-height: 1.4; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 24px 0 6px; }
section { padding-bottom: 8px; }
.meta { color: #555; font-size: 13px; }
.caption { font-size: 13px; color: #333; margin: 4px 0 12px; max-width: 1100px; }
.missing { background: #fff4e5; border-left: 4px solid #f0a030; padding: 6px 10px;
           font-size: 13px; margin: 8px 0; }
.plot { width: 100%; }
.row { display: flex; gap: 16px; }
.row > div { flex: 1 1 0; min-width: 0; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.agrees { background: #e6f4e6; font-weight: bold; }
td.disagrees { background: #fde8e8; font-weight: bold; }
td.not-measured { background: #f1f1f1; color: #666; }
"""

# Before plotly.js, so an error while it loads is caught as well.
ERROR_HOOK = """
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message || e.error || e));
});
window.addEventListener('unhandledrejection', function (e) {
  window.__reportErrors.push('unhandled rejection: ' + String(e.reason));
});
"""

RENDER = """
(function () {
  var root = document.documentElement, errors = window.__reportErrors;
  var plots = Array.prototype.slice.call(document.querySelectorAll('div.plot'));
  function finish() {
    var drawn = plots.filter(function (d) {
      return d.getAttribute('data-rendered') === '1' && d.querySelector('svg.main-svg');
    }).length;
    var sections = {};
    document.querySelectorAll('section[id]').forEach(function (s) {
      var r = s.getBoundingClientRect();
      sections[s.id] = [Math.round(r.top + window.scrollY), Math.round(r.height)];
    });
    root.setAttribute('data-plots-drawn', String(drawn));
    root.setAttribute('data-plots-total', String(plots.length));
    root.setAttribute('data-errors', JSON.stringify(errors));
    root.setAttribute('data-sections', JSON.stringify(sections));
    var figures = {};
    plots.forEach(function (d) {
      var r = d.getBoundingClientRect();
      figures[d.id] = [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY),
                       Math.round(r.width), Math.round(r.height)];
    });
    root.setAttribute('data-figures', JSON.stringify(figures));
    root.setAttribute('data-page-height', String(document.documentElement.scrollHeight));
    root.setAttribute('data-report-status',
                      errors.length ? 'error' : (drawn === plots.length ? 'ok' : 'incomplete'));
  }
  var jobs = plots.map(function (div) {
    try {
      var spec = JSON.parse(document.getElementById(div.id + '-json').textContent);
      var config = {responsive: true, displaylogo: false};
      return Promise.resolve(Plotly.newPlot(div, spec.data, spec.layout, config))
        .then(function () { div.setAttribute('data-rendered', '1'); })
        .catch(function (e) { errors.push(div.id + ': ' + String(e)); });
    } catch (e) {
      errors.push(div.id + ': ' + String(e));
      return Promise.resolve();
    }
  });
  Promise.all(jobs).then(finish, finish);
})();
"""


def _json_for_script(text: str) -> str:
    """JSON safe inside a <script> element: '<' only occurs in strings, where \\u003c is '<'."""
    return text.replace("<", "\\u003c")


class Page:
    """Appends blocks in order; :meth:`render` wraps them with the CSS and the scripts."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []
        self._figures: list[tuple[str, str]] = []  # (div id, figure JSON)
        self._open = False

    @property
    def figure_count(self) -> int:
        return len(self._figures)

    def raw(self, markup: str) -> None:
        self._parts.append(markup)

    def section(self, section_id: str, title: str) -> None:
        """Start a section (closing the previous one); sections are what screenshots crop."""
        self.end_section()
        self._parts.append(f'<section id="{html.escape(section_id)}"><h2>{html.escape(title)}</h2>')
        self._open = True

    def end_section(self) -> None:
        if self._open:
            self._parts.append("</section>")
            self._open = False

    def heading(self, text: str) -> None:
        self._parts.append(f"<h3>{html.escape(text)}</h3>")

    def paragraph(self, text: str, css_class: str = "caption") -> None:
        self._parts.append(f'<p class="{css_class}">{html.escape(text)}</p>')

    def missing(self, text: str) -> None:
        """Say plainly that something could not be drawn, and why."""
        self._parts.append(f'<p class="missing">{html.escape(text)}</p>')

    def figure_html(self, fig: go.Figure, fig_id: str) -> str:
        """A placeholder div for ``fig`` (registered for drawing), to place by hand or in a row."""
        div_id = f"fig-{fig_id}"
        height = int(fig.layout.height or 400)
        self._figures.append((div_id, fig.to_json()))
        return f'<div class="plot" id="{html.escape(div_id)}" style="height:{height}px"></div>'

    def figure(self, fig: go.Figure | None, fig_id: str, caption: str, lacking: str) -> None:
        """The figure and its caption, or ``lacking`` when there is no figure."""
        if fig is None:
            self.missing(lacking)
            return
        self._parts.append(self.figure_html(fig, fig_id))
        self.paragraph(caption)

    def row(self, cells: Sequence[str]) -> None:
        self._parts.append('<div class="row">' + "".join(f"<div>{c}</div>" for c in cells)
                           + "</div>")

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str | tuple[str, str]]]
    ) -> None:
        """Cells are text, or (text, css class); text is escaped."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = []
        for row in rows:
            cells = []
            for cell in row:
                text, cls = cell if isinstance(cell, tuple) else (cell, "")
                attr = f' class="{cls}"' if cls else ""
                cells.append(f"<td{attr}>{html.escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self._parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
                           "</tbody></table>")

    def render(self, plotly_js: str) -> str:
        self.end_section()
        data = "\n".join(
            f'<script type="application/json" id="{div_id}-json">{_json_for_script(spec)}</script>'
            for div_id, spec in self._figures
        )
        return (
            "<!DOCTYPE html>\n<html lang=\"en\" data-report-status=\"loading\">\n<head>\n"
            '<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{CSS}</style>\n"
            f"<script>{ERROR_HOOK}</script>\n"
            f"<script>{plotly_js}</script>\n</head>\n<body>\n"
            + "\n".join(self._parts)
            + f"\n{data}\n<script>{RENDER}</script>\n</body>\n</html>\n"
        )


def plotly_js() -> str:
    """The plotly.js bundled with the plotly package, so the page needs no network."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
