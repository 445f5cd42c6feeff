"""Pending approvals: what Trellis will not do without an operator's yes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit
from membership.errors import NotFound
from membership.models import Organization, PendingApproval, utcnow
from membership.rules import Actor

KINDS = ("plan", "scim_deactivate", "wave")


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
    if organization_id is not None:
        # Two workers holding the same scope at once (the offboardings of one wave) must find each
        # other's approval: the organization's row serialises them (SQLite has one writer anyway).
        await session.execute(
            select(Organization.id).where(Organization.id == organization_id).with_for_update()
        )
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


async def open_approval(session: AsyncSession, kind: str, scope: str) -> PendingApproval | None:
    return await session.scalar(
        select(PendingApproval).where(
            PendingApproval.kind == kind, PendingApproval.scope == scope, PendingApproval.decided_at.is_(None)
        )
    )


async def last_decided(session: AsyncSession, kind: str, scope: str) -> PendingApproval | None:
    """The scope's most recent decided approval of this kind."""
    return await session.scalar(
        select(PendingApproval)
        .where(
            PendingApproval.kind == kind,
            PendingApproval.scope == scope,
            PendingApproval.decided_at.is_not(None),
        )
        .order_by(PendingApproval.decided_at.desc(), PendingApproval.id.desc())
        .limit(1)
    )


async def rejected_plan(session: AsyncSession, scope: str, fingerprint: str) -> PendingApproval | None:
    """The operator's rejection of this very plan (same scope, same operations), if that is the scope's
    last decision: a plan rejected stays rejected until the state it was computed from changes."""
    last = await last_decided(session, "plan", scope)
    if last is not None and last.decision == "rejected" and last.payload.get("fingerprint") == fingerprint:
        return last
    return None


async def wave_decision(session: AsyncSession, scope: str, member: str) -> PendingApproval | None:
    """The latest decided wave of this scope that named `member`: approved or rejected."""
    statement = (
        select(PendingApproval)
        .where(
            PendingApproval.kind == "wave",
            PendingApproval.scope == scope,
            PendingApproval.decided_at.is_not(None),
        )
        .order_by(PendingApproval.decided_at.desc(), PendingApproval.id.desc())
    )
    for approval in (await session.scalars(statement)).all():
        if member in approval.payload.get("members", []):
            return approval
    return None


async def open_approvals(session: AsyncSession) -> list[PendingApproval]:
    statement = (
        select(PendingApproval).where(PendingApproval.decided_at.is_(None)).order_by(PendingApproval.id)
    )
    return list((await session.scalars(statement)).all())


async def decide(
    session: AsyncSession,
    approval_id: int,
    *,
    approve: bool,
    by: str,
    cause: str = "operator",
    organization_id: int | None = None,
) -> PendingApproval:
    """Record an operator's decision, audited. `organization_id`: only an approval of that organization
    (a console's operator decides their own organization's)."""
    approval = await session.get(PendingApproval, approval_id, with_for_update=True)
    foreign = (
        organization_id is not None and approval is not None and approval.organization_id != organization_id
    )
    if approval is None or approval.decided_at is not None or foreign:
        raise NotFound(f"no open approval {approval_id}")
    approval.decided_at = utcnow()
    approval.decision = "approved" if approve else "rejected"
    approval.decided_by = by
    audit.record(
        session,
        actor=Actor(name=by),
        cause=cause,
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
