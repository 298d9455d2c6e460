"""Which trials keep their trained weights: a policy, and the one transaction that admits a
trial's weights and drops those it displaces.

Most trials of a random search are never looked at again, and their weights were almost all of
a grid's database (one epoch of the Figure-1 grid: 357 MB). A launch keeps weights by a policy
(``keep_weights``): ``top:N`` (the default, ``top:5``), the N best trials of each study by
objective; ``all``; or ``none``. A finished trial's weights are stored only while it is among
the kept ones: the transaction that finishes it (``Trials.finish_trial``'s ``then``) locks the
study's row, ranks the study's trials with weights and this one, records its weights if it is
among the N best, and drops the records (and, in the database's own store, the bytes) of the
one it pushes out. Concurrent launchers of one study take that lock in turn, so none keeps
more than N, and none drops the best. A file's bytes (``artifact_dir``) are written before the
transaction and removed after it: a crash in between leaves a file no trial names, never a
trial that names a missing file.

Each kept trial names its weights as Optuna does (``optuna.artifacts.upload_artifact``'s trial
system attribute ``artifacts:<id>``), so optuna-dashboard lists them as the trial's artifacts.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

from hwsearch.options import ConfigError, setting

from . import schema as s
from .artifacts import ARTIFACT_DIR, ARTIFACTS, ArtifactStore
from .records import WEIGHTS_FILE

if TYPE_CHECKING:
    from .store import StudyStorage

DEFAULT_KEEP = "top:5"
MIMETYPE = "application/octet-stream"


@dataclass(frozen=True)
class KeepPolicy:
    """``top``: how many trials of a study keep weights; None keeps every trial's."""

    top: int | None

    @classmethod
    def parse(cls, text: str, name: str = "keep_weights") -> KeepPolicy:
        """``top:N`` (N >= 1), ``all`` or ``none``; anything else is a one-line error naming
        the setting ``name``."""
        value = str(text).strip().lower()
        if value == "all":
            return cls(None)
        if value == "none":
            return cls(0)
        head, _, count = value.partition(":")
        if head == "top" and count.isdigit() and int(count) >= 1:
            return cls(int(count))
        raise ConfigError(f"bad {setting(name)} {text!r}; allowed: top:N (N >= 1), all, none")

    def __str__(self) -> str:
        return "all" if self.top is None else "none" if self.top == 0 else f"top:{self.top}"


def check_keep(name: str, value: object) -> str | None:
    """The setting's check: None when ``value`` is a policy, else the one-line error."""
    try:
        KeepPolicy.parse(str(value), name.replace("-", "_"))
    except ConfigError as e:
        return str(e)
    return None


class Kept(NamedTuple):
    """One trial's stored weights: the trial, its value (None unless COMPLETE), the artifact."""

    trial_id: int
    number: int
    value: float | None
    artifact_id: str
    key: str  # its trial system attribute

    @property
    def rank(self) -> tuple[float, int]:
        """Best first: the lowest objective, the earlier trial among equals; valueless last."""
        value = self.value if self.value is not None and math.isfinite(self.value) else math.inf
        return value, self.number


def kept(conn: sa.Connection, study_id: int) -> list[Kept]:
    """The study's trials with weights, best first."""
    t, v, a = s.TRIALS, s.TRIAL_VALUES, s.TRIAL_SYSTEM_ATTRIBUTES
    rows = conn.execute(
        sa.select(t.c.trial_id, t.c.number, t.c.state, v.c.value, a.c.key, a.c.value_json)
        .select_from(t.join(a, a.c.trial_id == t.c.trial_id).outerjoin(
            v, sa.and_(v.c.trial_id == t.c.trial_id, v.c.objective == 0)))
        .where(t.c.study_id == study_id, a.c.key.like(f"{s.ARTIFACT_PREFIX}%"))
    ).all()
    out = []
    for trial_id, number, state, value, key, meta in rows:
        meta = json.loads(meta)  # the attribute's value, itself the metadata's JSON text
        meta = json.loads(meta) if isinstance(meta, str) else meta
        if isinstance(meta, dict) and meta.get("filename") == WEIGHTS_FILE:
            value = value if state == TrialState.COMPLETE.name else None
            out.append(Kept(trial_id, number, value, meta["artifact_id"], key))
    return sorted(out, key=lambda k: k.rank)


def kept_numbers(store: StudyStorage, study_name: str) -> list[int]:
    """The numbers of the study's trials that have weights, best first."""
    study_id = store.study_id(study_name)
    return [k.number for k in store.database.read(
        "listing kept weights", lambda conn: kept(conn, study_id))]


def which_have_weights(store: StudyStorage, trial_id: int) -> str:
    """Which trials of ``trial_id``'s study have weights, in words, for a refusal."""
    t = s.TRIALS

    def query(conn: sa.Connection) -> list[int]:
        study_id = conn.execute(sa.select(t.c.study_id).where(t.c.trial_id == trial_id)).scalar()
        return [k.number for k in kept(conn, study_id)] if study_id is not None else []

    numbers = store.database.read("listing kept weights", query)
    if not numbers:
        return "no trial of its study has stored weights"
    return "trials with weights: " + ", ".join(map(str, numbers))


def weights_attr(artifact_id: str) -> tuple[str, str]:
    """The trial system attribute Optuna's ``upload_artifact`` writes: its key and its
    ``value_json`` (the attribute's value is the metadata's JSON text, stored as JSON)."""
    meta = ArtifactMeta(artifact_id=artifact_id, filename=WEIGHTS_FILE, mimetype=MIMETYPE,
                        encoding=None)
    return s.ARTIFACT_PREFIX + artifact_id, json.dumps(json.dumps(asdict(meta)))


def drop(conn: sa.Connection, rows: list[Kept]) -> None:
    """Forget ``rows``' weights, and delete their bytes if the database's table holds them (a
    directory's files go after the transaction)."""
    a = s.TRIAL_SYSTEM_ATTRIBUTES
    for row in rows:
        conn.execute(a.delete().where(a.c.trial_id == row.trial_id, a.c.key == row.key))
    if rows:
        conn.execute(ARTIFACTS.delete().where(
            ARTIFACTS.c.artifact_id.in_([r.artifact_id for r in rows])))


def lock_study(conn: sa.Connection, study_id: int) -> None:
    """The study's row, locked to the end of the transaction (PostgreSQL; a SQLite
    transaction that has written holds the database's one write lock already)."""
    conn.execute(sa.select(s.STUDIES.c.study_id).where(s.STUDIES.c.study_id == study_id)
                 .with_for_update())


def admit(conn: sa.Connection, study_id: int, trial_id: int, artifact_id: str,
          policy: KeepPolicy) -> list[Kept]:
    """Record ``trial_id``'s weights and keep the study's ``policy.top`` best; returns what
    was dropped (this trial's own when it did not make it). Runs in the finishing transaction,
    after the trial's value is written."""
    lock_study(conn, study_id)
    key, meta = weights_attr(artifact_id)
    a = s.TRIAL_SYSTEM_ATTRIBUTES
    conn.execute(a.delete().where(a.c.trial_id == trial_id, a.c.key == key))  # a retry's
    conn.execute(a.insert().values(trial_id=trial_id, key=key, value_json=meta))
    rows = kept(conn, study_id)
    out = rows[policy.top:] if policy.top is not None else []
    drop(conn, out)
    return out


class WeightKeeper:
    """Stores finished trials' weights by a :class:`KeepPolicy`, where each study keeps them:
    in the database, or in the directory its ``artifact_dir`` attribute names."""

    def __init__(self, store: StudyStorage, policy: KeepPolicy) -> None:
        self.store, self.policy = store, policy
        self._dirs: dict[str, str | None] = {}

    def target(self, study_name: str) -> tuple[ArtifactStore, bool]:
        """Where ``study_name`` keeps its weights, and whether that is the database."""
        if study_name not in self._dirs:
            attrs = self.store.optuna.get_study_user_attrs(self.store.study_id(study_name))
            self._dirs[study_name] = attrs.get(ARTIFACT_DIR)
        where = self._dirs[study_name]
        if where is None:
            return self.store.artifacts.database, True
        return FileSystemArtifactStore(where), False

    def might_keep(self, study_id: int, value: float) -> bool:
        """Whether a trial of ``value`` would be among the kept: when not, it never will be
        (the kept ones only get better), so its bytes need not be written at all."""
        if self.policy.top is None:
            return True
        rows = self.store.database.read("ranking kept weights",
                                        lambda conn: kept(conn, study_id))
        return len(rows) < self.policy.top or value < rows[self.policy.top - 1].rank[0]

    def finish(self, study_name: str, trial_id: int, value: float | None, blob: bytes | None,
               mark: Callable[[Callable[[sa.Connection], None] | None], bool]) -> bool:
        """Finish the trial by ``mark(then)`` (a ``records.mark_*`` call), keeping its weights
        ``blob`` if the policy admits them, in the same transaction; ``mark``'s answer."""
        study_id = self.store.study_id(study_name)
        if (blob is None or value is None or self.policy.top == 0
                or not self.might_keep(study_id, value)):
            return mark(None)
        target, in_database = self.target(study_name)
        artifact_id = str(uuid.uuid4())
        target.write(artifact_id, io.BytesIO(blob))
        dropped: list[Kept] = []

        def then(conn: sa.Connection) -> None:
            dropped[:] = admit(conn, study_id, trial_id, artifact_id, self.policy)

        won = False
        try:
            won = mark(then)
        finally:
            gone = [k.artifact_id for k in dropped] if won else [artifact_id]
            if not in_database or not won:
                remove_quietly(target, gone)
        return won


def remove_quietly(target: ArtifactStore, artifact_ids: list[str]) -> None:
    for artifact_id in artifact_ids:
        try:
            target.remove(artifact_id)
        except (ArtifactNotFound, OSError):
            pass  # already gone: the record was what mattered


def check_artifact_dir(path: str) -> str:
    """The absolute path of an existing, writable directory; else a one-line error."""
    where = Path(path).expanduser()
    if not where.is_dir():
        raise ConfigError(f"`artifacts` {path} is not an existing directory")
    if not os.access(where, os.W_OK | os.X_OK):
        raise ConfigError(f"`artifacts` {path} is not writable")
    return str(where.resolve())
