"""The parts of Optuna's RDB schema this service reads and writes with its own SQL.

Optuna's Python API has no aggregate queries (it loads every trial to count them) and no way to
finish a trial and record why in one transaction. So the storage reads and writes a few of
Optuna's tables directly, through the columns declared here and nowhere else. The schema is
Optuna's persisted format, versioned (``version_info``, ``alembic_version``) and read by the
``optuna`` CLI and optuna-dashboard; ``tests/storage_tests/test_schema.py`` checks every column
below against the tables Optuna creates, so an Optuna upgrade that changes them fails loudly.

Conventions of that schema used here: ``trials.state`` holds a :class:`TrialState` name;
datetimes are naive UTC; attribute values are JSON text; a trial's value is a
``trial_values`` row (objective 0) whose ``value_type`` is ``FINITE`` for a finite value.
"""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()


def _enum(name: str, *labels: str) -> sa.Enum:
    """One of Optuna's enums: a native type on PostgreSQL, a VARCHAR elsewhere; never created
    here (Optuna creates the schema)."""
    return sa.Enum(*labels, name=name, create_type=False, create_constraint=False)


STATE = _enum("trialstate", "RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING")
VALUE_TYPE = _enum("trialvaluetype", "FINITE", "INF_POS", "INF_NEG")
INTERMEDIATE_TYPE = _enum("trialintermediatevaluetype", "FINITE", "INF_POS", "INF_NEG", "NAN")

STUDIES = sa.Table(
    "studies",
    METADATA,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("study_name", sa.String(512)),
)

STUDY_USER_ATTRIBUTES = sa.Table(
    "study_user_attributes",
    METADATA,
    sa.Column("study_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

TRIALS = sa.Table(
    "trials",
    METADATA,
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer),
    sa.Column("study_id", sa.Integer),
    sa.Column("state", STATE),
    sa.Column("datetime_start", sa.DateTime),
    sa.Column("datetime_complete", sa.DateTime),
)

TRIAL_VALUES = sa.Table(
    "trial_values",
    METADATA,
    sa.Column("trial_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("value", sa.Float),
    sa.Column("value_type", VALUE_TYPE),
)

TRIAL_PARAMS = sa.Table(
    "trial_params",
    METADATA,
    sa.Column("param_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("param_name", sa.String(512)),
    sa.Column("param_value", sa.Float),
    sa.Column("distribution_json", sa.Text),
)

TRIAL_USER_ATTRIBUTES = sa.Table(
    "trial_user_attributes",
    METADATA,
    sa.Column("trial_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

TRIAL_SYSTEM_ATTRIBUTES = sa.Table(
    "trial_system_attributes",
    METADATA,
    sa.Column("trial_system_attribute_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

TRIAL_INTERMEDIATE_VALUES = sa.Table(
    "trial_intermediate_values",
    METADATA,
    sa.Column("trial_intermediate_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("step", sa.Integer),
    sa.Column("intermediate_value", sa.Float),
    sa.Column("intermediate_value_type", INTERMEDIATE_TYPE),
)

TRIAL_HEARTBEATS = sa.Table(
    "trial_heartbeats",
    METADATA,
    sa.Column("trial_heartbeat_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("heartbeat", sa.DateTime),
)

FINITE = "FINITE"  # trial_values.value_type of a finite value
# A trial's artifact, as optuna.artifacts.upload_artifact records it: the system attribute
# "artifacts:<artifact id>" holding its ArtifactMeta as JSON (read by get_all_artifact_meta and
# optuna-dashboard; pinned by tests/storage_tests/test_keep.py).
ARTIFACT_PREFIX = "artifacts:"
