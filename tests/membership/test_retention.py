"""Retention: rows older than they are kept go, a short batch a transaction; the rest stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update

from membership.models import AuditEntry, EventLogEntry, utcnow
from membership.retention import prune, sizes
from tests.fixtures.store import World


async def aged_events(world: World, old: int, young: int) -> None:
    now = utcnow()
    rows = [
        {"action_id": f"a{n}", "type": "addMemberToBoard", "payload": {},
         "received_at": now - timedelta(days=100 if n < old else 1)}
        for n in range(old + young)
    ]  # fmt: skip
    async with world.database.transaction() as session:
        await session.execute(insert(EventLogEntry), rows)


async def test_old_events_are_deleted_in_batches_and_young_ones_kept(world: World) -> None:
    await aged_events(world, old=25, young=5)
    pruned = await prune(world.database, "event_log", utcnow() - timedelta(days=90), batch=10)
    async with world.database.transaction() as session:
        left = (await session.scalars(select(EventLogEntry.action_id).order_by(EventLogEntry.id))).all()
    assert (pruned.deleted, pruned.batches) == (25, 3)
    assert left == [f"a{n}" for n in range(25, 30)]
    assert pruned.longest_batch_s < 5


async def test_the_audit_log_keeps_what_is_younger_than_its_retention(world: World) -> None:
    async with world.database.transaction() as session:  # the world's set-up, as if 500 days ago
        await session.execute(update(AuditEntry).values(at=utcnow() - timedelta(days=500)))
        session.add(AuditEntry(actor="t", cause="t", action="recent", entity="t"))
    old = (await sizes(world.database))["audit_log"] - 1
    pruned = await prune(world.database, "audit_log", utcnow() - timedelta(days=400))
    async with world.database.transaction() as session:
        left = (await session.scalars(select(AuditEntry.action))).all()
    assert pruned.deleted == old
    assert left == ["recent"]
