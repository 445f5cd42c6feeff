"""The outbox of changes Trello must follow, written in the same transaction as the change itself."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from membership.models import MemberChange, utcnow

# What a change asks of the workers: bring the member's Trello side in line with the store ("update"),
# take them out of the workspace and its boards ("remove"), or bring them in ("onboard").
CHANGE_KINDS = ("update", "remove", "onboard")
SESSION_KEY = "trellis.member_changes"


async def add(
    session: AsyncSession, *, organization_id: int, user_id: int, kind: str, cause: str
) -> MemberChange:
    if kind not in CHANGE_KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    change = MemberChange(organization_id=organization_id, user_id=user_id, kind=kind, cause=cause)
    session.add(change)
    await session.flush()
    # Remembered on the session, so that whoever commits it can hand the change to the workers at once.
    session.info.setdefault(SESSION_KEY, []).append(change.id)
    return change


def added_in(session: AsyncSession) -> list[int]:
    """Ids of the changes this session added."""
    return list(session.info.get(SESSION_KEY, []))


async def pending(session: AsyncSession, limit: int = 1000) -> list[MemberChange]:
    statement = (
        select(MemberChange).where(MemberChange.done_at.is_(None)).order_by(MemberChange.id).limit(limit)
    )
    return list((await session.scalars(statement)).all())


async def mark_done(session: AsyncSession, change_id: int) -> None:
    await session.execute(update(MemberChange).where(MemberChange.id == change_id).values(done_at=utcnow()))
