"""One organization at a glance, as the store knows it: its link to Trello, its boards and people, what
waits for an operator, and when Trello last called about it. The console's first page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import rules
from membership.models import (
    AuditEntry,
    Board,
    EventLogEntry,
    Invite,
    Membership,
    Organization,
    PendingApproval,
    utcnow,
)
from membership.rules import Actor

BOARDS_LISTED = 200


@dataclass(frozen=True)
class BoardLine:
    board: Board
    last_delivery_at: datetime | None  # Trello's last webhook delivery about this board


@dataclass(frozen=True)
class Overview:
    organization: Organization
    open_boards: int
    closed_boards: int
    members: int
    open_invites: int  # not accepted, whether or not they have expired
    pending_approvals: int
    last_delivery_at: datetime | None  # Trello's last webhook delivery about the workspace or a board of it
    deliveries_last_day: int
    last_change_at: datetime | None  # the audit log's latest entry for the organization
    boards: list[BoardLine]  # open boards first, by name; at most BOARDS_LISTED


async def organization_overview(session: AsyncSession, actor: Actor, organization_id: int) -> Overview:
    rules.require_admin(actor)
    organization = await session.get(Organization, organization_id)
    assert organization is not None  # the actor is a member of it
    boards = (
        await session.execute(
            select(Board.closed, func.count())
            .where(Board.organization_id == organization_id)
            .group_by(Board.closed)
        )
    ).all()
    by_state = {bool(closed): count for closed, count in boards}
    members = await session.scalar(
        select(func.count()).select_from(Membership).where(Membership.organization_id == organization_id)
    )
    invites = await session.scalar(
        select(func.count())
        .select_from(Invite)
        .where(Invite.organization_id == organization_id, Invite.accepted_at.is_(None))
    )
    approvals = await session.scalar(
        select(func.count())
        .select_from(PendingApproval)
        .where(PendingApproval.organization_id == organization_id, PendingApproval.decided_at.is_(None))
    )
    # A delivery names its webhook's model: the workspace itself, or one of its boards.
    board_ids = select(Board.trello_board_id).where(Board.organization_id == organization_id)
    about = or_(EventLogEntry.model_id == organization.trello_org_id, EventLogEntry.model_id.in_(board_ids))
    last_delivery, last_day = (
        await session.execute(
            select(
                func.max(EventLogEntry.received_at),
                func.count().filter(EventLogEntry.received_at >= utcnow() - timedelta(days=1)),
            ).where(about)
        )
    ).one()
    last_change = await session.scalar(
        select(func.max(AuditEntry.at)).where(AuditEntry.organization_id == organization_id)
    )
    deliveries = (  # this organization's boards' only: never the whole event log grouped
        select(EventLogEntry.model_id, func.max(EventLogEntry.received_at).label("last"))
        .where(EventLogEntry.model_id.in_(board_ids))
        .group_by(EventLogEntry.model_id)
        .subquery()
    )
    listed = await session.execute(
        select(Board, deliveries.c.last)
        .outerjoin(deliveries, deliveries.c.model_id == Board.trello_board_id)
        .where(Board.organization_id == organization_id)
        .order_by(Board.closed, Board.name)
        .limit(BOARDS_LISTED)
    )
    return Overview(
        organization=organization,
        open_boards=by_state.get(False, 0),
        closed_boards=by_state.get(True, 0),
        members=members or 0,
        open_invites=invites or 0,
        pending_approvals=approvals or 0,
        last_delivery_at=last_delivery,
        deliveries_last_day=last_day or 0,
        last_change_at=last_change,
        boards=[BoardLine(board, last) for board, last in listed.all()],
    )
