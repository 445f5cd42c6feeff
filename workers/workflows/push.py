"""Pushing a change made through the membership API to Trello: the consumer of the store's outbox.

The change is marked done only once Trello has it; until then board reconciles keep the member
"pending" and push the store's state for them, whatever the authority.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select

from membership import outbox
from membership.database import Database
from membership.members import membership_of
from membership.models import Board, MemberChange, Organization, User
from membership.vocabulary import workspace_role
from workers.outside import errors
from workers.outside.limiter import Priority
from workers.outside.trello import TrelloClient
from workers.reconcile.board import reconcile_board
from workers.reconcile.plan import DEFAULT_POLICY, Policy

log = structlog.get_logger("workers.push")


@dataclass
class PushReport:
    change_id: int
    outcome: str = "pushed"
    boards: list[str] = field(default_factory=list)
    organization_id: int | None = None
    removed_email: str | None = None  # set when the change took someone out of the workspace


async def push_member_change(
    trello: TrelloClient, database: Database, change_id: int, *, policy: Policy = DEFAULT_POLICY
) -> PushReport:
    report = PushReport(change_id)
    async with database.transaction() as session:
        change = await session.get(MemberChange, change_id)
        if change is None or change.done_at is not None:
            report.outcome = "nothing to do"
            return report
        user = await session.get(User, change.user_id)
        organization = await session.get(Organization, change.organization_id)
        membership = await membership_of(session, change.organization_id, change.user_id)
        linked = await session.scalars(
            select(Board.trello_board_id).where(Board.organization_id == change.organization_id)
        )
        boards = [board for board in linked.all() if board is not None]
    assert user is not None  # the outbox row's user and organization exist: the change made them
    assert organization is not None
    if organization.trello_org_id is None:
        report.outcome = "organization not linked to Trello"
        return report
    workspace = organization.trello_org_id
    cause = f"push (change {change_id}: {change.cause})"
    report.organization_id = organization.id
    if change.kind == "remove":
        report.removed_email = user.email
        if user.trello_member_id is not None:
            # Not in the workspace any more (a 400 or 404) is what the change asked for.
            with contextlib.suppress(*errors.ABSENT):
                await trello.remove_organization_member_everywhere(workspace, user.trello_member_id)
    elif membership is not None:
        member_id = user.trello_member_id
        if member_id is None:
            member_id = await _invite(trello, database, workspace, user, workspace_role(membership.role))
        else:
            await trello.set_organization_member(workspace, member_id, workspace_role(membership.role))
        if member_id is not None:
            for board in boards:
                await reconcile_board(
                    trello, database, board, cause=cause, priority=Priority.EVENT, policy=policy
                )
                report.boards.append(board)
    async with database.transaction() as session:
        await outbox.mark_done(session, change_id)
    log.info("change pushed", change=change_id, kind=change.kind, boards=len(report.boards))
    return report


async def _invite(
    trello: TrelloClient, database: Database, workspace: str, user: User, role: str
) -> str | None:
    """Invite by email and link the Trello member the invitation made (Trello shows no one's email:
    the new member is the one that appeared in the workspace)."""
    if not user.email:
        return None
    before = {row["idMember"] for row in await trello.organization_memberships(workspace)}
    await trello.invite_to_organization(workspace, user.email, user.name or user.email, role)
    appeared = {row["idMember"] for row in await trello.organization_memberships(workspace)} - before
    if len(appeared) != 1:
        log.warning(
            "invited, but could not tell which Trello member is theirs", user=user.id, appeared=len(appeared)
        )
        return None
    member_id: str = appeared.pop()
    async with database.transaction() as session:
        taken = await session.scalar(select(User.id).where(User.trello_member_id == member_id))
        if taken is not None and taken != user.id:
            log.warning(
                "invited, but their Trello member is linked to another user", user=user.id, other=taken
            )
            return None
        linked = await session.get(User, user.id)
        assert linked is not None
        linked.trello_member_id = member_id
    return member_id
