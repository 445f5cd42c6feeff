"""A linked workspace as the store has it, and the changes a workspace reconcile writes into it.

Everything is keyed by Trello ids, since that is what the reconcile compares with; every change is
audited with its cause and puts nothing in the outbox (it comes from Trello: nothing to push back).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from membership import audit
from membership.members import BoardGrant, regrant, snapshot
from membership.models import Board, BoardGuest, MemberChange, Membership, Organization, User
from membership.rules import Actor


@dataclass(frozen=True)
class WorkspaceView:
    organization: Organization
    memberships: dict[str, Membership]  # by Trello member id, every member linked to Trello; no board access
    pending: frozenset[str]  # Trello member ids with membership API changes not yet pushed
    boards: dict[str, Board]  # by Trello board id

    @property
    def roles(self) -> dict[str, str]:
        return {member: m.role for member, m in self.memberships.items()}


async def organization_by_trello_id(session: AsyncSession, trello_org_id: str) -> Organization | None:
    return await session.scalar(select(Organization).where(Organization.trello_org_id == trello_org_id))


async def workspace_of_model(session: AsyncSession, trello_model_id: str) -> str | None:
    """The linked workspace a webhook's model (a workspace or one of its boards) belongs to."""
    if await organization_by_trello_id(session, trello_model_id) is not None:
        return trello_model_id
    return await session.scalar(
        select(Organization.trello_org_id)
        .join(Board, Board.organization_id == Organization.id)
        .where(Board.trello_board_id == trello_model_id)
    )


async def linked_organizations(session: AsyncSession) -> list[Organization]:
    statement = select(Organization).where(Organization.trello_org_id.is_not(None)).order_by(Organization.id)
    return list((await session.scalars(statement)).all())


async def open_linked_boards(session: AsyncSession) -> list[Board]:
    """Every open board of every linked workspace that is linked to Trello itself."""
    statement = (
        select(Board)
        .join(Organization, Organization.id == Board.organization_id)
        .where(Organization.trello_org_id.is_not(None), Board.trello_board_id.is_not(None))
        .where(Board.closed.is_(False))
        .order_by(Board.id)
    )
    return list((await session.scalars(statement)).all())


async def linked_memberships(
    session: AsyncSession, organization_id: int, *, board_access: bool = True
) -> dict[str, Membership]:
    """The organization's memberships whose users are linked to Trello, by Trello member id.

    `board_access=False` leaves each membership's board access records unloaded (touching them raises),
    for readers that look at one board only.
    """
    statement = (
        select(Membership, User.trello_member_id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, User.trello_member_id.is_not(None))
    )
    if not board_access:
        statement = statement.options(raiseload(Membership.board_access))
    rows = await session.execute(statement)
    return {member_id: m for m, member_id in rows.all() if member_id is not None}


async def pending_members(session: AsyncSession, organization_id: int) -> frozenset[str]:
    """Trello member ids of users with membership API changes in this organization not yet pushed,
    whether or not they still have a membership (a removal is a change too)."""
    rows = await session.scalars(
        select(User.trello_member_id)
        .join(MemberChange, MemberChange.user_id == User.id)
        .where(
            MemberChange.organization_id == organization_id,
            MemberChange.done_at.is_(None),
            User.trello_member_id.is_not(None),
        )
    )
    return frozenset(member for member in rows.all() if member is not None)


async def workspace_view(session: AsyncSession, organization: Organization) -> WorkspaceView:
    boards = await session.scalars(
        select(Board).where(Board.organization_id == organization.id, Board.trello_board_id.is_not(None))
    )
    return WorkspaceView(
        organization=organization,
        # Roles are all a workspace reconcile reads: every member's board access, loaded here, made a
        # resync's peak memory grow with members x boards (218 MB at 1,000 boards x 2,500 members).
        memberships=await linked_memberships(session, organization.id, board_access=False),
        pending=await pending_members(session, organization.id),
        boards={board.trello_board_id: board for board in boards.all() if board.trello_board_id},
    )


async def trello_user(
    session: AsyncSession, trello_member_id: str, *, username: str | None, full_name: str | None
) -> User:
    """The user linked to a Trello member, created from what Trello shows (no email: Trello hides it)."""
    user = await session.scalar(select(User).where(User.trello_member_id == trello_member_id))
    if user is None:
        user = User(name=full_name, trello_member_id=trello_member_id, trello_username=username)
        session.add(user)
        await session.flush()
    elif username and user.trello_username != username:
        user.trello_username = username
    return user


async def adopt_member(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    user: User,
    *,
    role: str,
    grants: Iterable[BoardGrant] = (),
    cause: str,
) -> Membership:
    """Give a user found in Trello a membership of the organization, audited. A guest of its boards is
    a guest no longer: a member of the workspace now."""
    membership = Membership(organization_id=organization_id, user_id=user.id, role=role, board_access=[])
    membership.board_access = regrant([], list(grants))
    session.add(membership)
    boards = select(Board.id).where(Board.organization_id == organization_id)
    await session.execute(
        delete(BoardGuest).where(
            BoardGuest.trello_member_id == user.trello_member_id, BoardGuest.board_id.in_(boards)
        )
    )
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="member_adopted", entity="membership",
        entity_id=membership.id, organization_id=organization_id,
        after={"trello_member_id": user.trello_member_id, "username": user.trello_username,
               **snapshot(membership)}, user_id=user.id, trello_member_id=user.trello_member_id,
    )  # fmt: skip
    return membership


async def set_synced_role(
    session: AsyncSession, actor: Actor, membership: Membership, role: str, *, cause: str
) -> None:
    """Record the role Trello gives the member, audited."""
    before = snapshot(membership)
    membership.role = role
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="role_synced", entity="membership",
        entity_id=membership.id, organization_id=membership.organization_id,
        before=before, after=snapshot(membership), user_id=membership.user_id,
    )  # fmt: skip


async def link_board(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    trello_board_id: str,
    *,
    name: str,
    closed: bool = False,
    cause: str,
) -> Board:
    """Record a board of the workspace that the store did not have, audited."""
    board = Board(organization_id=organization_id, trello_board_id=trello_board_id, name=name, closed=closed)
    session.add(board)
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="board_linked", entity="board", entity_id=board.id,
        organization_id=organization_id, after={"trello_board_id": trello_board_id, "name": name},
        board_id=board.id,
    )  # fmt: skip
    return board


async def update_board(session: AsyncSession, trello_board_id: str, *, name: str, closed: bool) -> None:
    """Keep a linked board's name and closed flag as Trello has them."""
    board = await session.scalar(select(Board).where(Board.trello_board_id == trello_board_id))
    if board is not None:
        board.name, board.closed = name, closed
