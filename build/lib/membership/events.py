"""The event log: each delivered action recorded exactly once, however often it arrives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from membership.models import EventLogEntry, utcnow


async def record_event(
    session: AsyncSession,
    *,
    action_id: str,
    type: str,
    model_id: str | None,
    action_date: datetime | None,
    payload: dict[str, Any],
) -> bool:
    """Insert the action unless it is already there. True when this call recorded it.

    ON CONFLICT DO NOTHING makes two concurrent runs of the same job safe without a savepoint dance.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(EventLogEntry)
        .values(
            action_id=action_id,
            type=type,
            model_id=model_id,
            action_date=action_date,
            received_at=utcnow(),
            payload=payload,
        )
        .on_conflict_do_nothing(index_elements=[EventLogEntry.action_id])
        .returning(EventLogEntry.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def newest_events(session: AsyncSession, limit: int = 20) -> list[EventLogEntry]:
    """The most recent actions by Trello's date (then id), newest first."""
    statement = (
        select(EventLogEntry)
        .order_by(EventLogEntry.action_date.desc().nulls_last(), EventLogEntry.action_id.desc())
        .limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def count_events(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(EventLogEntry))).scalar_one()
