"""Pending approvals: what Trellis will not do without an operator's yes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit
from membership.errors import NotFound
from membership.models import PendingApproval, utcnow
from membership.rules import Actor

KINDS = ("plan", "scim_deactivate")


async def request(
    session: AsyncSession,
    *,
    kind: str,
    organization_id: int | None,
    scope: str,
    summary: str,
    payload: dict[str, Any],
    actor: Actor,
    cause: str,
) -> PendingApproval:
    if kind not in KINDS:
        raise ValueError(f"unknown approval kind {kind!r}")
    # One open approval a scope: a plan held again (the next event on the board) updates it.
    existing = await session.scalar(
        select(PendingApproval)
        .where(
            PendingApproval.kind == kind, PendingApproval.scope == scope, PendingApproval.decided_at.is_(None)
        )
        .with_for_update()
    )
    if existing is not None:
        existing.summary, existing.payload = summary[:500], payload
        return existing
    approval = PendingApproval(
        kind=kind, organization_id=organization_id, scope=scope, summary=summary[:500], payload=payload
    )
    session.add(approval)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="approval_requested",
        entity="approval",
        entity_id=approval.id,
        organization_id=organization_id,
        after={"kind": kind, "scope": scope, "summary": summary},
    )
    return approval


async def open_approvals(session: AsyncSession) -> list[PendingApproval]:
    statement = (
        select(PendingApproval).where(PendingApproval.decided_at.is_(None)).order_by(PendingApproval.id)
    )
    return list((await session.scalars(statement)).all())


async def decide(session: AsyncSession, approval_id: int, *, approve: bool, by: str) -> PendingApproval:
    approval = await session.get(PendingApproval, approval_id, with_for_update=True)
    if approval is None or approval.decided_at is not None:
        raise NotFound(f"no open approval {approval_id}")
    approval.decided_at = utcnow()
    approval.decision = "approved" if approve else "rejected"
    approval.decided_by = by
    audit.record(
        session,
        actor=Actor(name=by),
        cause="operator",
        action=f"approval_{approval.decision}",
        entity="approval",
        entity_id=approval.id,
        organization_id=approval.organization_id,
        after={"kind": approval.kind, "scope": approval.scope},
    )
    return approval


async def approved_members(session: AsyncSession, approval_id: int) -> frozenset[str]:
    """The members an approved plan may take access from; none if it is not (or no longer) approved."""
    approval = await session.get(PendingApproval, approval_id)
    if approval is None or approval.decision != "approved":
        return frozenset()
    return frozenset(approval.payload.get("losing", []))
