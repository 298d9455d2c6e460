"""The test set is measured once, at the end, on each trial's best weights (the stored model),
and gives exactly what measuring it after every epoch gives at the best epoch.

Each run poisons one trial after epoch 2, so it diverges at epoch 3 and its best epoch is not
its last: measuring the live weights at the end (zeroed or NaN) instead of the best ones would
show. Every engine is tried: a single net, a pack of FC nets, a pack of conv nets.
"""

from __future__ import annotations

import math

import pytest
import torch

from hwsearch.training import Hyperparams, TrainConfig
from hwsearch.training.loop import TrialResult, fit
from hwsearch.training.trainer import build_engine

from .test_trainer import synthetic

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FC = TrainConfig(depth=4, epochs=4, batch_size=32, device="cpu", dtype="float64")
CONV = TrainConfig(model="mnist-highway-10", width=4, epochs=4, batch_size=16, device="cpu",
                   dtype="float64")
FC_TRIALS = [Hyperparams(lr=lr, momentum=0.9, lr_decay=0.9, activation=act, gate_bias=-2.0,
                         seed=seed)
             for lr, act, seed in ((0.05, "relu", 1), (0.1, "tanh", 2), (0.02, "relu", 3))]
CASES = {  # name: (config, trials, packed, the poisoned trial)
    "single": (FC, FC_TRIALS[:1], False, 0),
    "fc-pack": (FC, FC_TRIALS, True, 1),
    "conv-pack": (CONV, [Hyperparams.for_model(CONV.model, seed=s) for s in (1, 2)], True, 0),
}


def _run(case: str, every_epoch: bool) -> list[TrialResult]:
    config, trials, packed, victim = CASES[case]
    data = synthetic(n=128, n_test=96, seed=3)
    torch.manual_seed(0)  # the conv nets' dropout draws from the global stream
    engine, _ = build_engine(config, trials, data, packed)

    def poison(epoch: int, _: object) -> None:
        if epoch == 2:  # a NaN in the victim's slice of the first weight: it diverges next
            with torch.no_grad():
                params = list(engine.model.parameters()) if not packed else engine.params
                first = params[0]
                (first.view(engine.k, -1)[victim] if packed else first).fill_(math.nan)

    return fit(engine, data, [hp.seed for hp in trials], epochs=config.epochs,
               batch_size=config.batch, test_every_epoch=every_epoch, on_epoch=poison)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_test_set_is_measured_once_on_each_trials_best_weights(case: str) -> None:
    victim = CASES[case][3]
    once, every = _run(case, every_epoch=False), _run(case, every_epoch=True)
    hit = once[victim]
    assert hit.diverged_epoch == 3 and hit.best_epoch in (1, 2)  # its best is not its last
    for a, b in zip(once, every, strict=True):
        assert [e.train_loss for e in a.epochs] == [e.train_loss for e in b.epochs]
        assert all(e.test_accuracy is None for e in a.epochs)  # not measured per epoch
        assert all(e.test_accuracy is not None for e in b.epochs)
        best = next(e for e in b.epochs if e.epoch == b.best_epoch)
        assert a.test_accuracy is not None and a.test_accuracy == best.test_accuracy
        assert b.test_accuracy == best.test_accuracy
        assert a.test_seconds > 0 and b.test_seconds == 0
    # the trials differ, so agreement is not that of identical runs
    if len(once) > 1:
        assert len({round(r.epochs[0].train_loss, 9) for r in once}) == len(once)


def test_no_test_set_means_no_test_accuracy() -> None:
    config, trials, packed, _ = CASES["fc-pack"]
    data = synthetic(n=64, n_test=32, seed=3)
    engine, _ = build_engine(config, trials, data, packed)
    results = fit(engine, data, [hp.seed for hp in trials], epochs=2, batch_size=32,
                  eval_test=False)
    assert all(r.test_accuracy is None and r.test_seconds == 0 for r in results)
    assert all(e.test_accuracy is None for r in results for e in r.epochs)


def test_asking_for_every_epoch_without_the_test_set_is_refused() -> None:
    with pytest.raises(ValueError, match="test_every_epoch.*eval_test"):
        TrainConfig(eval_test=False, test_every_epoch=True)
