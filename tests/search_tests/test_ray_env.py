"""A local Ray started by a launch gets no database credentials in its processes' environment
(the driver holds the URL; workers get parameters, not the database)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hwtest import REPO, hwsearch_env

pytestmark = pytest.mark.slow

PROBE = textwrap.dedent(
    """
    import os, ray
    from hwsearch.search.ray_setup import start_ray
    start_ray(None)
    try:
        @ray.remote(num_cpus=0)
        def seen():
            return {k: os.environ.get(k) for k in
                    ("HWSEARCH_STORAGE", "HWSEARCH_STORAGE_FILE", "PGPASSWORD")}
        print("worker", sorted(k for k, v in ray.get(seen.remote()).items() if v))
        print("driver", sorted(k for k in ("HWSEARCH_STORAGE", "PGPASSWORD") if os.environ.get(k)))
    finally:
        ray.shutdown()
    """
)


def test_local_ray_workers_get_no_credentials() -> None:
    env = hwsearch_env(
        HWSEARCH_STORAGE="postgresql+psycopg://u:pw-ray-env@127.0.0.1/db",
        HWSEARCH_STORAGE_FILE="/nonexistent/url",
        PGPASSWORD="pw-ray-env",
    )
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "worker []" in lines
    assert "driver ['HWSEARCH_STORAGE', 'PGPASSWORD']" in lines  # restored for the driver
