"""Random search whose draws depend only on (seed, study, trial number, parameter).

Optuna's RandomSampler draws from one stream, so which trial gets which values depends on the
order of asks: with concurrent launchers or replaced failures, a rerun would differ. Here every
draw has its own RandomSampler, seeded from those four, so a study's parameter sets are a pure
function of its seed.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial


def draw_seed(seed: int, study_name: str, number: int, param_name: str) -> int:
    entropy = [seed, zlib.crc32(study_name.encode()), number, zlib.crc32(param_name.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class SeededRandomSampler(BaseSampler):
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        one_draw = RandomSampler(seed=draw_seed(self.seed, study.study_name, trial.number,
                                                param_name))
        return one_draw.sample_independent(study, trial, param_name, param_distribution)
