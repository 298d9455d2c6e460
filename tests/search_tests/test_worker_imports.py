"""A search worker's imports: the trainable and the training loop, and nothing of the database
(a worker never sees it), since every import is paid before a pack's first step."""

from __future__ import annotations

import json
import subprocess
import sys

from hwtest import REPO, hwsearch_env


def _loaded_after(imports: str, packages: tuple[str, ...], prefixes: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` or starting with ``prefixes`` that a fresh interpreter has
    loaded after ``import {imports}``."""
    probe = (
        f"import json, sys\nimport {imports}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r} "
        f"or m.startswith({prefixes!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=hwsearch_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_a_worker_imports_no_database_stack() -> None:
    """A search worker imports the trainable and the training loop, and writes weight payloads,
    but never sees the database: it imports neither the storage nor SQLAlchemy nor Optuna
    (about 0.2 s of each worker's start on two cores, before its first step)."""
    loaded = _loaded_after(
        "hwsearch.search.trainable, hwsearch.training.trainer",
        ("sqlalchemy", "optuna", "alembic"),
        ("hwsearch.storage", "hwsearch.search.settings", "hwsearch.search.launcher"),
    )
    assert loaded == []


def test_the_weight_sink_imports_neither_tune_nor_torch() -> None:
    """The worker that hosts the weight sink imports its module to build the actor; it stores
    bytes, so it must not pay for Ray Tune or torch while the packs' workers start."""
    loaded = _loaded_after("hwsearch.search.sink", ("torch",),
                           ("ray.tune", "ray.train", "hwsearch.search.trainable"))
    assert loaded == []
