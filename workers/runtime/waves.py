"""The accidental-removal guard across events: a wave of departures is held as one approval.

An admin who removes forty people from a workspace by mistake sets off forty offboardings, each of
which takes the person off every board and may deactivate their Atlassian account. So each departure
Trellis learns of (a `removeMemberFromOrganization`, or a workspace reconcile finding someone gone) is
noted per workspace in Redis, and its offboarding waits a moment (`settle_seconds`) so that a wave is
seen whole. When an offboarding runs and more than `members` people left the workspace within
`seconds`, it does nothing but hold: one approval a workspace names every person of the wave and the
boards each still has in the store. Approving runs the held offboardings; rejecting leaves Trello as it
is (only the store, when mirroring, lets them go) and is remembered, so the wave is never held again.
One person leaving is never held.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import approvals
from membership.boards import effective_access
from membership.database import Database
from membership.models import Board, Membership, PendingApproval, User, as_utc
from membership.workspaces import organization_by_trello_id
from workers import metrics
from workers.reconcile.runner import RECONCILER

log = structlog.get_logger("workers.runtime.waves")


@dataclass(frozen=True)
class WaveRules:
    members: int = 5  # more than this many departures within `seconds` is a wave
    seconds: float = 600.0
    settle_seconds: float = 30.0  # an offboarding waits this long, so that a wave is seen whole


@dataclass(frozen=True)
class Verdict:
    """What an offboarding may do: go ahead, wait in a held wave, or (the wave rejected) leave Trello be."""

    outcome: Literal["go", "held", "rejected"]
    approval_id: int | None = None


class Departures:
    """Who left each workspace lately, in a Redis sorted set scored by when Trellis learnt of it."""

    def __init__(self, redis: Redis, rules: WaveRules) -> None:
        self.redis = redis
        self.rules = rules

    def _key(self, workspace: str) -> str:
        return f"trellis:departures:{workspace}"

    async def note(self, workspace: str, member: str) -> None:
        """Remember the departure (the first time counts: a repeated delivery adds nothing)."""
        now, key = time.time(), self._key(workspace)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {member: now}, nx=True)
            pipe.zremrangebyscore(key, "-inf", now - self.rules.seconds)
            pipe.expire(key, int(self.rules.seconds) + 1)
            await pipe.execute()

    async def noted_at(self, workspace: str, member: str) -> float | None:
        """When the member's departure was noted (seconds since the epoch), if within the window."""
        score = await self.redis.zscore(self._key(workspace), member)
        return None if score is None else float(score)

    async def recent(self, workspace: str) -> list[str]:
        """Who left the workspace within the window, oldest first."""
        since = time.time() - self.rules.seconds
        members = await self.redis.zrangebyscore(self._key(workspace), since, "+inf")
        return [m.decode() if isinstance(m, bytes) else m for m in members]


async def verdict(database: Database, departures: Departures, workspace: str, member: str) -> Verdict:
    """Whether `member`'s offboarding from `workspace` may go ahead now. An operator's decision on a wave
    that named them applies to that departure, not to a later one (they came back and left again)."""
    async with database.transaction() as session:
        decided = await decision(session, departures, workspace, member)
    if decided is not None:
        return Verdict("go" if decided.decision == "approved" else "rejected", decided.id)
    recent = await departures.recent(workspace)
    if len(recent) <= departures.rules.members:
        return Verdict("go")
    return Verdict("held", await hold_wave(database, departures, workspace, recent))


async def decision(
    session: AsyncSession, departures: Departures, workspace: str, member: str
) -> PendingApproval | None:
    """The operator's decision on the member's departure: the latest decided wave naming them, if it was
    decided after the departure was noted (or the note has expired)."""
    decided = await approvals.wave_decision(session, f"wave:{workspace}", member)
    if decided is None or decided.decided_at is None:
        return None
    noted = await departures.noted_at(workspace, member)
    return decided if noted is None or noted <= as_utc(decided.decided_at).timestamp() else None


async def hold_wave(database: Database, departures: Departures, workspace: str, recent: list[str]) -> int:
    """The workspace's open wave approval, naming everyone it holds (those named before stay named, those
    an operator decided on already are not named again)."""
    scope, rules = f"wave:{workspace}", departures.rules
    async with database.transaction() as session:
        organization = await organization_by_trello_id(session, workspace)
        existing = await approvals.open_approval(session, "wave", scope)
        named = list(existing.payload.get("members", [])) if existing is not None else []
        undecided = [m for m in recent if await decision(session, departures, workspace, m) is None]
        members = named + [m for m in undecided if m not in named]
        boards = await _boards_in_store(session, organization.id, members) if organization else {}
        approval = await approvals.request(
            session, kind="wave", organization_id=organization.id if organization else None, scope=scope,
            summary=(f"{len(members)} people left workspace {workspace} within {rules.seconds:.0f} s (more "
                     f"than {rules.members}): their board removals and account deactivations wait"),
            payload={"workspace": workspace, "members": members, "boards": boards},
            actor=RECONCILER, cause=f"wave of departures from {workspace}",
        )  # fmt: skip
    if existing is None:
        metrics.HELD.labels("wave").inc()
        log.warning("wave of departures held for an operator", workspace=workspace, members=len(members),
                    approval=approval.id)  # fmt: skip
    return approval.id


async def _boards_in_store(
    session: AsyncSession, organization_id: int, members: list[str]
) -> dict[str, list[str]]:
    """For each member, the boards (by name) the store gives them access to."""
    rows = await session.execute(
        select(Membership, User.trello_member_id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, User.trello_member_id.in_(members))
    )
    boards = (await session.scalars(select(Board).where(Board.organization_id == organization_id))).all()
    named: dict[str, list[str]] = {member: [] for member in members}
    for membership, member in rows.all():
        if member is not None:  # always: selected by it
            named[member] = [b.name for b in boards if effective_access(membership, b.id) != "none"]
    return named
