"""Headless Chromium: does a report page draw every figure without a JavaScript error?

The page records the outcome on its ``<html>`` element (see ``report.page``); ``--dump-dom``
prints the DOM after the scripts ran, so reading those attributes needs no driver library.
The same browser takes the screenshots kept in docs/report.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

# The product's own Chromium pieces (``scripts/publish`` draws its PNGs with them).
from hwsearch.app.screenshots import CHROMIUM_ENV as ENV_VAR
from hwsearch.app.screenshots import FLAGS, VIRTUAL_TIME_MS, HtmlAttrs, find_chromium


class RenderResult(NamedTuple):
    status: str  # "ok" | "error" | "incomplete" | "loading" (the render script never finished)
    drawn: int
    total: int
    errors: list[str]
    sections: dict[str, tuple[int, int]]  # section id -> (top, height) in CSS pixels


def _run(args: list[str], chromium: str | None, timeout: float) -> subprocess.CompletedProcess:
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium found (set {ENV_VAR} or install chromium)")
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)


def check_page(
    html_path: str | Path, chromium: str | None = None, width: int = 1400,
    timeout: float = 180,
) -> RenderResult:
    """Load the page headless and read back what its render script recorded."""
    proc = _run([f"--window-size={width},1000", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                 "--dump-dom", Path(html_path).resolve().as_uri()], chromium, timeout)
    parser = HtmlAttrs()
    parser.feed(proc.stdout)
    attrs = parser.attrs
    if not attrs:
        raise RuntimeError(f"Chromium printed no page (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    sections = {k: (int(v[0]), int(v[1]))
                for k, v in json.loads(attrs.get("data-sections", "{}")).items()}
    return RenderResult(
        attrs.get("data-report-status", "missing"),
        int(attrs.get("data-plots-drawn", 0)),
        int(attrs.get("data-plots-total", 0)),
        list(json.loads(attrs.get("data-errors", "[]"))),
        sections,
    )


def screenshot(
    html_path: str | Path, png_path: str | Path, width: int = 1400, height: int = 5000,
    chromium: str | None = None, timeout: float = 180,
) -> Path:
    """A PNG of the top ``height`` pixels of the page, drawn at ``width``."""
    png = Path(png_path).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    proc = _run([f"--window-size={width},{height}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                 f"--screenshot={png}", Path(html_path).resolve().as_uri()], chromium, timeout)
    if not png.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    return png


def section_screenshots(
    html_path: str | Path, out_dir: str | Path, width: int = 1400, max_height: int = 900,
    chromium: str | None = None, colors: int | None = None,
) -> list[Path]:
    """One PNG per page section (``<id>.png``, cut at ``max_height``), from one full screenshot.

    ``colors`` (at most 256) makes palette PNGs, a third the size but with banded colour bars.
    """
    from PIL import Image  # Pillow comes with torchvision; only screenshots need it

    result = check_page(html_path, chromium, width)
    if result.status != "ok":
        raise RuntimeError(f"page did not render cleanly: {result.status}, {result.errors}")
    bottom = max(top + height for top, height in result.sections.values())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        full = screenshot(html_path, Path(tmp) / "full.png", width, bottom + 20, chromium)
        paths = []
        with Image.open(full) as image:
            first = True
            for name, (top, height) in result.sections.items():
                start = 0 if first else top  # the first section keeps the page's title
                first = False
                crop = image.crop((0, start, width, min(top + height, start + max_height)))
                path = out / f"{name}.png"
                crop = crop.convert("RGB")
                (crop.quantize(colors) if colors else crop).save(path, optimize=True)
                paths.append(path)
    return paths
