"""``prune-weights``: drop the weights a policy no longer keeps from an existing database (one
filled under ``keep_weights all``, or by a version before the policy), then compact a SQLite
file. A write command: it changes the database, never creates one; ``dry_run`` only reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsearch.storage import StorageError, open_storage
from hwsearch.storage.existing import check_existing
from hwsearch.storage.keep import KeepPolicy
from hwsearch.storage.prune import Pruned, compact, prune, sqlite_path
from hwsearch.storage.url import mask_url, parse_url

from .quiet import quiet_optuna
from .storage_url import resolve_storage


@dataclass(frozen=True)
class PruneResult:
    studies: list[Pruned]
    dry_run: bool
    file_bytes: tuple[int, int] | None  # a SQLite file's size before and after; else None

    @property
    def dropped(self) -> int:
        return sum(p.dropped for p in self.studies)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.studies)


def prune_weights(
    keep: str, *, dry_run: bool = False, study: str | None = None, storage: str | None = None,
    storage_file: str | None = None,
) -> PruneResult:
    """Keep each study's (or ``study``'s) ``keep`` best trials' weights and drop the rest."""
    policy = KeepPolicy.parse(keep, name="keep")
    url = resolve_storage(storage, storage_file)
    parsed = parse_url(url)
    try:  # an existing database only: a typo must not make a new one
        check_existing(url, parsed, mask_url(parsed))
    except StorageError as e:
        raise StorageError(str(e).replace("this command only reads",
                                          "prune-weights changes only an existing one")) from None
    quiet_optuna()
    store = open_storage(url, create=not dry_run)  # a dry run opens it read-only
    try:
        names = store.study_names()
        if study is not None and study not in names:
            raise LookupError(f"no study {study!r} in {store.display_url}; studies: "
                              f"{', '.join(names) or 'none'}")
        path = sqlite_path(store)
        before = _file_bytes(path)
        pruned = [prune(store, name, policy, dry_run) for name in
                  ([study] if study is not None else names)]
        if not dry_run and any(p.dropped for p in pruned):
            compact(store)
        sizes = (before, _file_bytes(path)) if path is not None else None
        return PruneResult(pruned, dry_run, sizes)
    finally:
        store.close()


def _file_bytes(path: Path | None) -> int:
    """A SQLite database's bytes on disk, its write-ahead log included."""
    if path is None:
        return 0
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
