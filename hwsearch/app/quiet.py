"""Quiet Optuna for commands whose output is the interface (no Ray, no torch imported)."""

from __future__ import annotations

import warnings

import optuna


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
