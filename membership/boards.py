"""Boards as a reconcile sees them: who has which access, and the writer that records what Trello gave.

Effective board access (DESIGN.md): the board's override if the membership has one, else write when
`can_write_all_boards`, read when `can_read_all_boards`, else none.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from membership import audit
from membership.members import snapshot
from membership.models import (
    Board,
    BoardAccess,
    BoardGuest,
    InviteBoardAccess,
    Membership,
    Organization,
    User,
)
from membership.rules import Actor
from membership.vocabulary import Access, grant_access, grant_flags
from membership.workspaces import organization_by_trello_id, pending_members


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
    guests: dict[str, str]  # the board's guests as last recorded: Trello member id -> board role


async def board_by_trello_id(session: AsyncSession, trello_board_id: str) -> Board | None:
    return await session.scalar(select(Board).where(Board.trello_board_id == trello_board_id))


async def board_view(session: AsyncSession, board: Board, on_board: Collection[str] = ()) -> BoardView:
    """The store's side of a board, for the members `on_board` (Trello member ids: those Trello has on it)
    and every member the store gives access to it. A member of neither kind is left out: there is
    nothing to plan for them, and reading the whole workspace for each board made a resync cost members
    x boards rows."""
    organization = await session.get(Organization, board.organization_id)
    assert organization is not None  # a board's foreign key guarantees it
    memberships = await board_memberships(session, board, on_board)
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
        guests={guest.trello_member_id: guest.role for guest in await board_guests(session, board.id)},
    )


async def board_memberships(
    session: AsyncSession, board: Board, on_board: Collection[str]
) -> dict[str, Membership]:
    """The memberships linked to Trello, by Trello member id, of those `on_board` and of those the store
    may give access to the board (an override for it, or access to every board); board access records
    and users are left unloaded."""
    overridden = select(BoardAccess.membership_id).where(BoardAccess.board_id == board.id)
    statement = (
        select(Membership, User.trello_member_id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.organization_id == board.organization_id,
            User.trello_member_id.is_not(None),
            or_(
                User.trello_member_id.in_(list(on_board)),
                Membership.id.in_(overridden),
                Membership.can_read_all_boards,
                Membership.can_write_all_boards,
            ),
        )
        .options(raiseload(Membership.board_access), raiseload(Membership.user))
    )
    rows = await session.execute(statement)
    return {member_id: m for m, member_id in rows.all() if member_id is not None}


async def board_guests(session: AsyncSession, board_id: int) -> list[BoardGuest]:
    statement = select(BoardGuest).where(BoardGuest.board_id == board_id).order_by(BoardGuest.id)
    return list((await session.scalars(statement)).all())


async def record_guests(
    session: AsyncSession, actor: Actor, board: Board, guests: Mapping[str, str], *, cause: str
) -> None:
    """Record the board's guests (Trello member id -> board role) as Trello has them now: new ones are
    added, gone ones deleted, changed roles updated; audited with the difference."""
    recorded = {guest.trello_member_id: guest for guest in await board_guests(session, board.id)}
    before = {member: guest.role for member, guest in recorded.items()}
    if before == dict(guests):
        return
    for member, guest in recorded.items():
        if member not in guests:
            await session.delete(guest)
        elif guest.role != guests[member]:
            guest.role = guests[member]
    session.add_all(
        BoardGuest(board_id=board.id, trello_member_id=member, role=role)
        for member, role in guests.items()
        if member not in recorded
    )
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="board_guests_seen", entity="board", entity_id=board.id,
        organization_id=board.organization_id, before={"guests": before}, after={"guests": dict(guests)},
        board_id=board.id,
    )  # fmt: skip


async def forget_guest(session: AsyncSession, board_id: int, trello_member_id: str) -> None:
    """A guest is no longer on the board (a reconcile removed them): the caller audits the removal."""
    await session.execute(
        delete(BoardGuest).where(
            BoardGuest.board_id == board_id, BoardGuest.trello_member_id == trello_member_id
        )
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
        user_id=membership.user_id,
        board_id=board_id,
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


async def unlink_board(session: AsyncSession, actor: Actor, board: Board, *, reason: str, cause: str) -> None:
    """Let go of a board Trello no longer has, or that left for a workspace the store does not link: its
    access records (and invites' grants of it) go with it, all audited with the reason."""
    removed = await _drop_access(session, board)
    await session.delete(board)
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="board_unlinked", entity="board", entity_id=board.id,
        organization_id=board.organization_id,
        before={"trello_board_id": board.trello_board_id, "name": board.name, "access": removed},
        after={"reason": reason}, board_id=board.id,
    )  # fmt: skip


async def move_board(
    session: AsyncSession, actor: Actor, board: Board, organization_id: int, *, cause: str
) -> None:
    """A board moved in Trello to another linked workspace: the access its old workspace's members had
    goes, and the board is the new workspace's, whose reconciles take it from here."""
    removed = await _drop_access(session, board)
    before = {"organization_id": board.organization_id, "access": removed}
    board.organization_id = organization_id
    await session.flush()
    audit.record(
        session, actor=actor, cause=cause, action="board_moved", entity="board", entity_id=board.id,
        organization_id=organization_id, before=before,
        after={"organization_id": organization_id, "trello_board_id": board.trello_board_id},
        board_id=board.id,
    )  # fmt: skip


async def _drop_access(session: AsyncSession, board: Board) -> list[dict[str, object]]:
    """Delete the board's access records and invites' grants of it; returns what the access records were."""
    rows = (await session.scalars(select(BoardAccess).where(BoardAccess.board_id == board.id))).all()
    removed: list[dict[str, object]] = [
        {"membership_id": a.membership_id, "can_read": a.can_read, "can_write": a.can_write} for a in rows
    ]
    await session.execute(delete(BoardAccess).where(BoardAccess.board_id == board.id))
    await session.execute(delete(InviteBoardAccess).where(InviteBoardAccess.board_id == board.id))
    return removed


async def boards_filed_elsewhere(
    session: AsyncSession, organization_id: int, trello_board_ids: list[str]
) -> list[str]:
    """Of these Trello boards, the ones the store files under another organization."""
    if not trello_board_ids:
        return []
    rows = await session.scalars(
        select(Board.trello_board_id).where(
            Board.trello_board_id.in_(trello_board_ids), Board.organization_id != organization_id
        )
    )
    return [board for board in rows.all() if board is not None]
