"""A study made elsewhere (``optuna create-study``, the dashboard) carries no recorded
configuration: it is refused unless adopted, and one that maximises is refused always."""

from __future__ import annotations

import optuna
import pytest

from hwsearch.options import ConfigError
from hwsearch.search.space import SearchSpace
from hwsearch.search.studies import check_study, open_study, study_name
from hwsearch.storage import open_storage
from hwsearch.storage.records import STUDY_SPEC
from hwsearch.training import TrainConfig

CONFIG = TrainConfig(model="highway", depth=2, epochs=1)


def test_a_foreign_study_needs_adopt(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    try:
        name = study_name(CONFIG, prefix)
        foreign = optuna.create_study(study_name=name, storage=store.optuna)
        foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        space = SearchSpace()
        for call in (check_study, open_study):
            with pytest.raises(ConfigError, match="not made by hwsearch.*`adopt`"):
                call(store.optuna, name, CONFIG, 0, space)
        assert STUDY_SPEC not in optuna.load_study(study_name=name, storage=store.optuna).user_attrs
        assert check_study(store.optuna, name, CONFIG, 0, space, adopt=True)
        study = open_study(store.optuna, name, CONFIG, 0, space, adopt=True)
        assert study.user_attrs[STUDY_SPEC]["depth"] == 2  # adopted: ours from now on
        assert open_study(store.optuna, name, CONFIG, 0, space).study_name == name
        with pytest.raises(ConfigError, match="different configuration"):
            open_study(store.optuna, name, TrainConfig(model="highway", depth=2, epochs=2), 0,
                       space)
    finally:
        store.close()


def test_a_maximising_study_is_refused_even_adopted(storage_url: str, prefix: str) -> None:
    store = open_storage(storage_url)
    try:
        name = study_name(CONFIG, prefix)
        optuna.create_study(study_name=name, storage=store.optuna, direction="maximize")
        for adopt in (False, True):
            with pytest.raises(ConfigError, match="direction maximize; allowed: minimize"):
                open_study(store.optuna, name, CONFIG, 0, SearchSpace(), adopt=adopt)
    finally:
        store.close()


def test_an_empty_foreign_study_is_refused_after_a_moment(tmp_path) -> None:
    """Empty and without a configuration: perhaps another launcher's, just created; after
    the wait it is foreign."""
    store = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    try:
        name = study_name(CONFIG)
        optuna.create_study(study_name=name, storage=store.optuna)
        with pytest.raises(ConfigError, match="not made by hwsearch"):
            check_study(store.optuna, name, CONFIG, 0, SearchSpace())
    finally:
        store.close()
