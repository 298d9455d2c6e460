"""A PNG of each figure of a written report, drawn by a real headless Chromium (run here, in
the application layer: it is a command line of its own).

The page records each figure's box once its plots are drawn (``data-figures``, see
``report.page``); ``--dump-dom`` reads them back. A whole page may be taller than a browser
draws in one screenshot, so it is drawn in bands: a copy of the page shifted up by a negative
body margin puts the band at the top of the window, and each figure is cut out of the band
that holds it. Nothing is done by hand: the screenshots are what a reader's browser shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path


class ScreenshotError(ValueError):
    """The figures cannot be drawn (no Chromium, or the page fails in it); says why."""

CHROMIUM_ENV = "HWSEARCH_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
VIRTUAL_TIME_MS = 60_000  # runs the page's timers and promises to completion
WIDTH = 1400
BAND = 4000  # pixels drawn per screenshot; well under what Chromium draws in one
PAD = 8  # pixels kept around each figure
TIMEOUT_S = 300


def find_chromium() -> str | None:
    """``$HWSEARCH_CHROMIUM``, else the first Chromium or Chrome on the PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if Path(configured).is_file() else None
    return next((p for p in (shutil.which(c) for c in CANDIDATES) if p), None)


def _chromium(binary: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="hwsearch-chromium-") as profile:
        try:
            return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                                  capture_output=True, text=True, timeout=TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ScreenshotError(f"Chromium ({binary}) failed: {e}") from None


class HtmlAttrs(HTMLParser):
    """The attributes of a page's <html> element, where its render script records what it drew."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html" and not self.attrs:
            self.attrs = {k: v or "" for k, v in attrs}


Box = tuple[int, int, int, int]  # left, top, width, height in CSS pixels


def figure_boxes(page: Path, binary: str) -> tuple[dict[str, Box], int]:
    """Each figure's box by its id (``figure1``, ``lesion``, …) and the page's height, once
    every plot drew without a JavaScript error (else :class:`ScreenshotError`)."""
    proc = _chromium(binary, [f"--window-size={WIDTH},1000",
                              f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom",
                              page.resolve().as_uri()])
    parser = HtmlAttrs()
    parser.feed(proc.stdout)
    attrs = parser.attrs
    status = attrs.get("data-report-status", "missing")
    if status != "ok":
        raise ScreenshotError(f"the page did not draw cleanly in Chromium ({status}: "
                          f"{attrs.get('data-errors', proc.stderr.strip()[-300:])})")
    boxes = {k.removeprefix("fig-"): (int(v[0]), int(v[1]), int(v[2]), int(v[3]))
             for k, v in json.loads(attrs.get("data-figures", "{}")).items()}
    return boxes, int(attrs.get("data-page-height", "0"))


def _bands(boxes: dict[str, Box]) -> list[tuple[int, list[str]]]:
    """(top, figure ids) per screenshot: each band starts above its first figure and holds
    every following figure that ends within it."""
    bands: list[tuple[int, list[str]]] = []
    for fig_id, (_, top, _, height) in sorted(boxes.items(), key=lambda kv: kv[1][1]):
        if bands and top + height + PAD <= bands[-1][0] + BAND:
            bands[-1][1].append(fig_id)
        else:
            bands.append((max(0, top - PAD), [fig_id]))
    return bands


def figure_screenshots(page: Path, out_dir: Path, prefix: str = "figure-") -> list[Path]:
    """Write ``out_dir/<prefix><id>.png`` for every figure of the report ``page``; returns them
    in page order. Needs Chromium (``$HWSEARCH_CHROMIUM`` or on the PATH) and Pillow."""
    from PIL import Image  # only screenshots need it

    binary = find_chromium()
    if binary is None:
        raise ScreenshotError(f"no Chromium found for the screenshots; install chromium or set "
                          f"${CHROMIUM_ENV}")
    boxes, _ = figure_boxes(page, binary)
    html = page.read_text(encoding="utf-8")
    out: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="hwsearch-shots-") as tmp:
        for k, (top, ids) in enumerate(_bands(boxes)):
            # The page is self-contained: a copy anywhere draws the same.
            shifted = Path(tmp) / f"band-{k}.html"
            shifted.write_text(html.replace(
                "</head>", f"<style>body {{ margin-top: -{top}px !important; }}</style></head>",
                1), encoding="utf-8")
            png = Path(tmp) / f"band-{k}.png"
            proc = _chromium(binary, [f"--window-size={WIDTH},{BAND}",
                                      f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                                      f"--screenshot={png}", shifted.as_uri()])
            if not png.is_file():
                raise ScreenshotError(f"Chromium wrote no screenshot (exit {proc.returncode}): "
                                  f"{proc.stderr.strip()[-300:]}")
            with Image.open(png) as band:
                for fig_id in ids:
                    left, ftop, width, height = boxes[fig_id]
                    y = ftop - top
                    crop = band.crop((max(0, left - PAD), max(0, y - PAD),
                                      min(WIDTH, left + width + PAD), y + height + PAD))
                    path = out_dir / f"{prefix}{fig_id}.png"
                    crop.convert("RGB").save(path, optimize=True)
                    out.append(path)
    return out
