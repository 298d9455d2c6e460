"""Random search whose draws depend only on (seed, study, trial number, parameter).

Optuna's RandomSampler draws from one stream, so which trial gets which values depends on the
order of asks: with concurrent launchers or replaced failures, a rerun would differ. Reseeding
per trial makes a study's parameter sets a pure function of its seed.
"""

from __future__ import annotations

import zlib

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import RandomSampler
from optuna.trial import FrozenTrial


class SeededRandomSampler(RandomSampler):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed = seed

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> object:
        entropy = [
            self.seed,
            zlib.crc32(study.study_name.encode()),
            trial.number,
            zlib.crc32(param_name.encode()),
        ]
        self._rng._rng = np.random.RandomState(np.random.SeedSequence(entropy).generate_state(4))
        return super().sample_independent(study, trial, param_name, param_distribution)
