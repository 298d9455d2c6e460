"""Launch progress counts work: trial-epochs done out of trial-epochs planned, so it moves
with every epoch and does not jump when a pack of trials finishes at once."""

from __future__ import annotations

import io

import pytest

from hwsearch.app.progress import Progress
from hwsearch.storage import Counts


def _counts(finished: int = 0) -> Counts:
    return Counts(complete=finished, pruned=0, running=0, failed=0, diverged=0, best=None)


def test_progress_moves_with_epochs_not_packs() -> None:
    out = io.StringIO()
    p = Progress(out=out, every=0.0)
    p.begin("sqlite:///x.db", 2, 4, {"a": _counts(), "b": _counts(2)}, epochs=10)
    assert (p.work_done(), p.work_planned()) == (20, 80)  # b's two finished trials
    assert p.eta_seconds() is None  # nothing done yet in this launch
    for epoch in (1, 2, 3):
        for trial in (0, 1):  # a pack of two trials, in lockstep
            p.epoch("a", trial, epoch, 1.0 / epoch)
    assert p.work_done() == 26 and p.eta_seconds() is not None
    p.finished("a", 0.3, trial=0)  # a whole trial: its remaining epochs count as done
    p.finished("a", None, diverged=True, trial=1)  # stopped early: its work is done too
    assert p.work_done() == 40
    p.epoch("a", 2, 5, 0.5)
    p.failed("a", trial=2)  # its replacement does the work again
    assert p.work_done() == 40
    p.tick(force=True)
    text = out.getvalue()
    assert "40/80 trial-epochs done (50%), 4/8 trials done" in text
    assert "  a: 20/40 epochs, 2/4 trials done, best 0.3, 1 diverged, 1 failed (replaced)" in text


def test_the_eta_weighs_each_study_by_its_cost() -> None:
    """The costliest packs run first: half the cheap study's epochs would take a tenth of the
    time its expensive half took, and the ETA says so where an unweighted count would not."""
    p = Progress(out=io.StringIO(), every=0.0)
    p.begin("sqlite:///x.db", 1, 1, {"deep": _counts(), "shallow": _counts()}, epochs=10,
            costs={"deep": 10.0, "shallow": 1.0})
    p._start -= 100.0  # the deep trial's ten epochs took 100 s
    for epoch in range(1, 11):
        p.epoch("deep", 0, epoch, 1.0)
    p.finished("deep", 0.5, trial=0)
    assert (p.work_done(), p.work_planned()) == (10, 20)  # the counts stay trial-epochs
    assert p.eta_seconds() == pytest.approx(10.0, rel=1e-3)  # not the 100 s of an even count
    unweighted = Progress(out=io.StringIO(), every=0.0)
    unweighted.begin("sqlite:///x.db", 1, 1, {"deep": _counts(), "shallow": _counts()},
                     epochs=10)
    unweighted._start -= 100.0
    unweighted.finished("deep", 0.5, trial=0)
    assert unweighted.eta_seconds() == pytest.approx(100.0, rel=1e-3)
