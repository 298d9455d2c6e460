"""The load test, small: several launchers' planners on one study of the real PostgreSQL end
with exact counts (its timings are reported, never checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwtest import REPO, pg_url


@pytest.mark.slow
def test_four_launchers_end_with_exact_counts(pg_database: str, tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "load.py"), "--url", pg_url(pg_database),
         "--processes", "4", "--trials", "400", "--pack", "8", "--sleep", "0.02",
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["counts"] == {"states": {"COMPLETE": 400}, "trials": 400,
                                "distinct_numbers": 400, "numbers": [0, 399], "exact": True}
    assert result["asks"] == 400  # no trial asked twice, none failed and replaced
    assert result["finished_events"] == 400 and result["failed_events"] == 0
    assert sum(result["per_process_asks"]) == 400 and len(result["per_process_asks"]) == 4
    assert result["launcher_errors"] == {} and result["launchers_reported"] == 4
    assert result["lock_wait_s"]["n"] >= 400 // 8  # every pack was asked under the claim
