"""scripts/publish on a real (tiny) launch: every file it writes, read back against the
database; and its refusals, which write nothing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from PIL import Image

from hwtest import REPO, foreign_study, hwsearch_env, run_hwsearch, tiny_launch_args

PUBLISH = REPO / "scripts" / "publish"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def publish(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PUBLISH), *args], capture_output=True, text=True,
                          timeout=timeout, env=hwsearch_env(), cwd=REPO)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> tuple[Path, str, str]:
    """plain and highway at depth 2, 3 trials each, 2 epochs on 300 images, by a real launch;
    with the command and the commit it ran at."""
    db = tmp_path_factory.mktemp("run") / "run.db"
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    args = tiny_launch_args(f"sqlite:///{db}", str(mnist_dir), "", **{
        "--epochs": "2", "--limit-train": "300"})
    out = run_hwsearch(*args)
    assert out.returncode == 0, out.stderr[-3000:]
    return db, "hwsearch " + " ".join(args), head


@pytest.mark.slow
def test_a_published_run_holds_what_the_database_holds(
        launched: tuple[Path, str, str], tmp_path: Path, mnist_dir: Path) -> None:
    db, command, head = launched
    out = tmp_path / "docs" / "results" / "run"
    run = publish(str(db), str(out), "--data-dir", str(mnist_dir), "--command", command,
                  "--load", "load average: 1.00, 1.00, 1.00")
    assert run.returncode == 0, run.stderr[-3000:]
    sizes = json.loads(run.stdout)["bytes"]
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    assert all(0 < (out / n).stat().st_size == b <= 20 * 2**20 for n, b in sizes.items())
    assert sizes["report.html"] < 8 * 2**20  # self-contained, plotly.js once

    studies = {s.study_name: s for s in optuna.get_all_study_summaries(f"sqlite:///{db}")}
    assert set(studies) == {"mnist-plain-d2", "mnist-highway-d2"}
    trials = {(name, t.number): t for name in studies
              for t in optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials}
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == len(trials) == 6
    for row in rows:
        t = trials[(row["study"], int(row["number"]))]
        assert row["state"] == t.state.name and int(row["epochs_recorded"]) == 2
        for epoch in (1, 2):
            assert float(row[f"objective_epoch_{epoch}"]) == t.intermediate_values[epoch]
        assert float(row["objective"]) == t.value
        assert float(row["lr"]) == t.params["lr"]
        assert (row["gate_bias"] != "") == (row["study"] == "mnist-highway-d2")

    readme = (out / "README.md").read_text()
    code = {s.user_attrs["code_version"] for s in studies.values()}
    assert len(code) == 1 and code.pop().startswith(f"git:{head}")
    assert f"`git:{head}" in readme
    assert command in readme and "Epochs per trial: 2." in readme
    assert "load average: 1.00, 1.00, 1.00" in readme
    assert "## Discussion" in readme and "TO FILL IN" in readme  # device, discussion
    assert "| Plain networks get harder to optimize as they get deeper |" in readme
    # each range names the models whose trials draw it: no gate bias for a plain net
    assert "- gate_bias: -10 to -1, uniform (highway)\n" in readme
    assert "- lr: 1e-06 to 1, log scale (highway, plain)\n" in readme
    assert "(../../reproduction.md#" not in readme  # not under the repository's docs/
    # one screenshot per figure of the report, each a PNG of the figure's size
    page = (out / "report.html").read_text()
    figures = sorted(line.split('id="fig-')[1].split('"')[0]
                     for line in page.split("<div") if 'class="plot" id="fig-' in line)
    shots = sorted(p.name for p in out.glob("fig-*.png"))
    assert shots == sorted(f"fig-{f}.png" for f in figures) and len(shots) >= 5
    for name in shots:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
        with Image.open(out / name) as image:
            assert image.width > 200 and image.height > 100
            assert len(image.convert("L").getcolors(2**16) or ()) > 10  # drawn, not blank

    # A limit smaller than the page: refused, and nothing is left behind.
    again = tmp_path / "again"
    code_ = ("import sys; import hwsearch.app.publish as p; "
             "p.LIMIT_BYTES = 2**20; import runpy; sys.argv = ['publish', *sys.argv[1:]]; "
             "runpy.run_path('scripts/publish', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code_, str(db), str(again)], capture_output=True,
                         text=True, timeout=600, env=hwsearch_env(), cwd=REPO)
    assert run.returncode == 2, run.stderr[-2000:]
    last = run.stderr.strip().splitlines()[-1]
    assert "over 1 MB: report.html" in last and "nothing written" in last
    assert not again.exists() and [p.name for p in tmp_path.iterdir()] == ["docs"]


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    text = tmp_path / "notes.db"
    text.write_text("not a database")
    foreign = foreign_study(f"sqlite:///{tmp_path / 'foreign.db'}")
    for args, says in [
        ((str(text), str(tmp_path / "a")), "cannot open"),
        ((foreign, str(tmp_path / "b")), "not a hwsearch database"),
        ((str(tmp_path / "missing.db"), str(tmp_path / "c")), "no database at"),
        ((foreign, str(full)), "exists and is not empty"),
    ]:
        run = publish(*args, timeout=120)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db", "full", "notes.db"]
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
