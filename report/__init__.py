"""The reproduction report: the papers' figures and claims, drawn from a search's storage.

``write_report`` writes one offline HTML page; ``report.data`` holds the pure functions that
compute each figure's numbers, ``report.figures`` draws them, ``report.page`` lays them out.
"""

from __future__ import annotations

from .write import ReportError, write_report

__all__ = ["ReportError", "write_report"]
