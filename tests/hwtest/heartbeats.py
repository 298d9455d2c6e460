"""The database's clock, moved by hand for one trial: its last heartbeat backdated.

Staleness is judged on the database's clock (a trial's last beat against ``CURRENT_TIMESTAMP``),
so a test that wants a trial to look ``seconds`` old moves its beat back that far instead of
sleeping through its grace period: no wall clock, and no race with a loaded machine."""

from __future__ import annotations

import sqlalchemy as sa


def backdate_beat(engine: sa.Engine, trial_id: int, seconds: float) -> None:
    """Move trial ``trial_id``'s stored heartbeat ``seconds`` into the past (it must have one)."""
    if engine.dialect.name == "sqlite":
        sql = ("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, :shift) "
               "WHERE trial_id = :id")
        params = {"shift": f"-{seconds:g} seconds", "id": trial_id}
    else:
        sql = ("UPDATE trial_heartbeats SET heartbeat = heartbeat - make_interval(secs => :s) "
               "WHERE trial_id = :id")
        params = {"s": seconds, "id": trial_id}
    with engine.begin() as conn:
        moved = conn.execute(sa.text(sql), params).rowcount
    assert moved == 1, f"trial {trial_id} has no heartbeat to backdate"
