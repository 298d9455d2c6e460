"""Rows as the read commands print them: an aligned table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterable
from typing import Any, TextIO

from hwsearch.options import shown

FORMATS = ("table", "json", "csv")
STREAMED = 1000  # CSV rows read before the columns are fixed


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO) -> None:
    """``rows`` as ``fmt`` on ``out``; CSV streams (a page of rows fixes the columns)."""
    if fmt != "csv":
        print(format_rows(list(rows), fmt), file=out)
        return
    rows = iter(rows)
    first = list(itertools.islice(rows, STREAMED))
    flat = [{k: _cell(v) for k, v in r.items()} for r in first]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", restval="",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def format_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    flat = [{k: _cell(v) for k, v in r.items()} for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buf.getvalue().rstrip("\n")
    if not flat:
        return "(no rows)"
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in flat)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in flat]
    return "\n".join(line.rstrip() for line in lines)


def _cell(v: Any) -> str:
    """A cell as text a terminal shows as is: names made elsewhere may hold escape sequences
    or control characters, which are shown escaped (JSON escapes its own)."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return " ".join(f"{shown(str(k))}={_cell(x)}" for k, x in sorted(v.items()))
    return shown(str(v))
