"""Boards as a reconcile sees them: who has which access, and the writer that records what Trello gave.

Effective board access (DESIGN.md): the board's override if the membership has one, else write when
`can_write_all_boards`, read when `can_read_all_boards`, else none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit
from membership.members import snapshot
from membership.models import Board, BoardAccess, Membership, Organization, User
from membership.rules import Actor
from membership.vocabulary import Access, grant_access, grant_flags
from membership.workspaces import linked_memberships, organization_by_trello_id, pending_members


def effective_access(membership: Membership, board_id: int) -> Access:
    override = next((a for a in membership.board_access if a.board_id == board_id), None)
    return access_with(membership, override)


def access_with(membership: Membership, override: BoardAccess | None) -> Access:
    """The access a membership gives to a board, given its override for that board, if any."""
    if override is not None:
        return grant_access(can_read=override.can_read, can_write=override.can_write)
    return grant_access(can_read=membership.can_read_all_boards, can_write=membership.can_write_all_boards)


@dataclass(frozen=True)
class BoardView:
    board: Board
    organization: Organization
    access: dict[str, Access]  # by Trello member id, for every member linked to Trello
    pending: frozenset[str]  # Trello member ids with membership API changes not yet pushed


async def board_by_trello_id(session: AsyncSession, trello_board_id: str) -> Board | None:
    return await session.scalar(select(Board).where(Board.trello_board_id == trello_board_id))


async def board_view(session: AsyncSession, board: Board) -> BoardView:
    organization = await session.get(Organization, board.organization_id)
    assert organization is not None  # a board's foreign key guarantees it
    # Only this board's overrides: every membership's full list would make a resync cost
    # members x boards rows for each board.
    memberships = await linked_memberships(session, board.organization_id, board_access=False)
    overrides = {
        access.membership_id: access
        for access in (
            await session.scalars(select(BoardAccess).where(BoardAccess.board_id == board.id))
        ).all()
    }
    pending = await pending_members(session, board.organization_id)
    return BoardView(
        board=board,
        organization=organization,
        access={member: access_with(m, overrides.get(m.id)) for member, m in memberships.items()},
        pending=pending & memberships.keys(),
    )


async def set_board_access(
    session: AsyncSession, actor: Actor, membership: Membership, board_id: int, access: Access, *, cause: str
) -> None:
    """Give the membership `access` to the board through an override, audited with its cause."""
    before = snapshot(membership)
    override = next((a for a in membership.board_access if a.board_id == board_id), None)
    if override is None:
        override = BoardAccess(board_id=board_id)
        membership.board_access.append(override)
    override.can_read, override.can_write = grant_flags(access)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="board_access_synced",
        entity="membership",
        entity_id=membership.id,
        organization_id=membership.organization_id,
        before=before,
        after=snapshot(membership),
    )


async def membership_by_trello_ids(
    session: AsyncSession, trello_org_id: str, trello_member_id: str
) -> tuple[Organization | None, Membership | None]:
    """The linked organization and, if the store has one, that Trello member's membership of it."""
    organization = await organization_by_trello_id(session, trello_org_id)
    if organization is None:
        return None, None
    membership = await session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization.id, User.trello_member_id == trello_member_id)
    )
    return organization, membership
