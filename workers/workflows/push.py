"""Pushing a change made through the membership API to Trello: the consumer of the store's outbox.

The change is marked done only once Trello has it; until then board reconciles keep the member
"pending" and push the store's state for them, whatever the authority. A newcomer is invited by email
and linked to the Trello member Trello's answer shows was added; Trello shows no one's email, so
invitations to one workspace are made one at a time (`invitations_of`), and an invitee that cannot be told
apart leaves the change pending, to be tried again (`errors.InviteeNotIdentified`), never done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

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
from workers.workflows.accounts import Person

log = structlog.get_logger("workers.push")

# Holds one Trello id (a workspace whose invitations are being made, a board being reconciled) for one
# caller at a time, across every worker.
Serialiser = Callable[[str], AbstractAsyncContextManager[object]]


def unserialised(name: str) -> AbstractAsyncContextManager[object]:
    """For a single caller (a test, one process): nothing to wait for."""
    return contextlib.nullcontext()


@dataclass
class PushReport:
    change_id: int
    outcome: str = "pushed"
    boards: list[str] = field(default_factory=list)
    organization_id: int | None = None
    removed: Person | None = None  # set when the change took someone out of the workspace


async def push_member_change(
    trello: TrelloClient,
    database: Database,
    change_id: int,
    *,
    policy: Policy = DEFAULT_POLICY,
    invitations_of: Serialiser = unserialised,
    board_held: Serialiser = unserialised,
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
        report.removed = Person(user.email, user.trello_member_id, user.id)
        if user.trello_member_id is not None:
            # Not in the workspace any more (a 400 or 404) is what the change asked for.
            with contextlib.suppress(*errors.ABSENT):
                await trello.remove_organization_member_everywhere(workspace, user.trello_member_id)
    elif membership is not None:
        member_id = user.trello_member_id
        if member_id is None:
            async with invitations_of(workspace):
                member_id = await _invite(trello, database, workspace, user, workspace_role(membership.role))
        else:
            await trello.set_organization_member(workspace, member_id, workspace_role(membership.role))
        if member_id is not None:
            for board in boards:
                async with board_held(board):  # the scope's lease: no reconcile beside it
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
    """Invite by email and link the Trello member the invitation added: the one member in Trello's
    answer (or, when the answer does not list the workspace's members, in a listing read at once) that
    was not in the workspace before. The caller holds the workspace's invitations meanwhile."""
    if not user.email:
        return None
    before = _member_ids(await trello.organization_memberships(workspace))
    answer = await trello.invite_to_organization(workspace, user.email, user.name or user.email, role)
    after = _member_ids(answer.get("memberships")) or _member_ids(
        await trello.organization_memberships(workspace)
    )
    appeared = after - before
    if len(appeared) != 1:
        raise errors.InviteeNotIdentified(
            f"invited {user.email}: Trello shows {len(appeared)} new members of the workspace, not one: "
            "which is theirs cannot be told"
        )
    member_id = appeared.pop()
    async with database.transaction() as session:
        taken = await session.scalar(select(User.id).where(User.trello_member_id == member_id))
        if taken is not None and taken != user.id:
            raise errors.InviteeNotIdentified(
                f"invited {user.email}, but the Trello member that joined is linked to user {taken}"
            )
        linked = await session.get(User, user.id)
        assert linked is not None
        linked.trello_member_id = member_id
    log.info("invitee linked", user=user.id, member=member_id)
    return member_id


def _member_ids(memberships: Any) -> set[str]:
    """The member ids of a list of workspace memberships (empty when it is not one)."""
    if not isinstance(memberships, list):
        return set()
    return {row["idMember"] for row in memberships if isinstance(row, dict) and "idMember" in row}
