"""Optuna's RDBStorage with its calls retried through transient database faults.

The search reaches the database through Optuna's API too (studies, intermediate values,
artifacts' attributes); overriding the public storage methods puts all of those behind the
same :class:`~.retry.Retry` as this package's own queries. ``record_heartbeat`` is left
unretried: a missed beat is survivable and the next one comes soon.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import optuna

from .handoff import with_password_from_env, without_password
from .retry import Retry

RETRIED = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_user_attrs", "get_trial_system_attrs", "get_trial_id_from_study_id_trial_number",
    "get_trial", "get_all_trials", "get_n_trials", "get_best_trial",
)


def _retried(name: str) -> Callable[..., Any]:
    base = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(base)
    def method(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self.retry(name, lambda: base(self, *args, **kwargs))

    return method


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """An RDBStorage whose public calls go through ``retry``. Pickled (multiprocessing, joblib,
    Ray), it carries no password: the unpickling side reads it from its own environment
    (``handoff.py``), and gets a retry of its own with the same budget."""

    def __init__(self, url: str, retry: Retry, **kwargs: Any) -> None:
        self.retry = retry
        super().__init__(url, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["url"] = without_password(self.url)
        state["retry"] = (self.retry.display_url, self.retry.budget)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        display_url, budget = state.pop("retry")
        self.retry = Retry(display_url, budget)
        state["url"] = with_password_from_env(state["url"])
        super().__setstate__(state)

    for _name in RETRIED:
        locals()[_name] = _retried(_name)
    del _name
