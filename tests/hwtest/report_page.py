"""A written report read back as data: its tables (by their headers), its claims' verdicts by
claim, and each figure's plotly JSON (numbers decoded), so tests assert on what the page shows
instead of counting substrings."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

_FIGURE = re.compile(r'<script type="application/json" id="fig-(.+?)-json">(.*?)</script>', re.S)


class _Tables(HTMLParser):
    """Every <table>: its header cells, and each row's cells as (text, css class)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[list[str], list[list[tuple[str, str]]]]] = []
        self._cell: list[str] | None = None
        self._cls = ""
        self._row: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._cls = [], dict(attrs).get("class") or ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell)
            if tag == "th":
                self.tables[-1][0].append(text)
            else:
                self._row.append((text, self._cls))
            self._cell = None
        elif tag == "tr" and self._row:
            self.tables[-1][1].append(self._row)


def _decode(value: Any) -> Any:
    """Plotly's JSON with typed arrays (``{"dtype", "bdata", "shape"}``) made numpy arrays."""
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            if shape:
                array = array.reshape([int(n) for n in str(shape).split(",")])
            return array
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class ReportPage:
    """``ReportPage(path)``: the page at ``path`` (an index.html the report wrote)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text()
        parser = _Tables()
        parser.feed(self.text)
        self._tables = parser.tables

    def tables(self, first_header: str) -> list[list[dict[str, str]]]:
        """Every table whose first header is ``first_header``, as rows of {header: text}."""
        return [[{h: text for h, (text, _) in zip(headers, row, strict=True)} for row in rows]
                for headers, rows in self._tables if headers[:1] == [first_header]]

    def summary(self) -> dict[str, dict[str, str]]:
        """The summary table's rows by study."""
        (rows,) = self.tables("Study")[:1]
        return {row["Study"]: row for row in rows}

    def verdicts(self) -> list[dict[str, str]]:
        """Per claims table (one per protocol): {claim: verdict}, the verdict as its cell says
        it and as its cell is styled (they must agree)."""
        out = []
        for headers, rows in self._tables:
            if headers[:1] != ["Claim"]:
                continue
            col = headers.index("Verdict")
            table = {}
            for row in rows:
                text, css = row[col]
                assert css == text.replace(" ", "-"), (text, css)
                table[row[0][0]] = text
            out.append(table)
        return out

    def figures(self) -> dict[str, dict[str, Any]]:
        """Each figure's plotly JSON by its id (``figure1``, ``figure2``, ``lesion``,
        ``slices-0-…``), with typed arrays decoded to numpy."""
        return {m[1]: _decode(json.loads(m[2])) for m in _FIGURE.finditer(self.text)}

    def figure(self, fig_id: str) -> dict[str, Any]:
        return self.figures()[fig_id]

    def panels(self, fig_id: str) -> dict[str, dict[str, Any]]:
        """A figure's traces by their ``name`` (heatmaps and scatters name their panel)."""
        return {trace.get("name", ""): trace for trace in self.figure(fig_id)["data"]}
