"""The weight sink: an actor that holds trained weights from workers until the launcher stores
them, so that the storage URL never reaches a worker.

A module of its own, importing only Ray: the worker that hosts the sink imports this module to
build the actor, and would otherwise import Ray Tune with the trainable (about 0.7 s of a core
while the packs' workers start beside it)."""

from __future__ import annotations

import ray


@ray.remote(num_cpus=0)
class WeightSink:
    """Holds trained weights from workers until the launcher stores them."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def put(self, key: str, blob: bytes) -> None:
        self._blobs[key] = blob

    def pop(self, key: str) -> bytes | None:
        return self._blobs.pop(key, None)
