"""The columns hwsearch.storage.schema reads and writes are the ones Optuna creates, with the
enum labels we use: an Optuna upgrade that changes its schema fails here, not in a search."""

from __future__ import annotations

import sqlalchemy as sa

from hwsearch.storage import open_storage, schema


def test_every_declared_column_exists(storage_url: str) -> None:
    store = open_storage(storage_url)
    inspector = sa.inspect(store.optuna.engine)
    for table in schema.METADATA.tables.values():
        actual = {c["name"] for c in inspector.get_columns(table.name)}
        declared = {c.name for c in table.columns}
        assert declared <= actual, (table.name, declared - actual)
    store.close()


def test_enum_labels_match_optuna() -> None:
    from optuna.trial import TrialState

    assert set(schema.STATE.enums) == {s.name for s in TrialState}
    assert schema.FINITE in schema.VALUE_TYPE.enums
