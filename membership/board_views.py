"""Boards as the membership API shows them: who can see a board, members and guests apart.

Admins only: a board's page names every person with access to it, which a member may not list
(`rules.check_can_view`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import rules
from membership.boards import board_guests, effective_access
from membership.errors import NotFound
from membership.models import Board, BoardGuest, Membership
from membership.paging import Page, paginate
from membership.rules import Actor
from membership.vocabulary import Access


@dataclass(frozen=True)
class BoardMember:
    membership: Membership
    access: Access


@dataclass(frozen=True)
class BoardPage:
    board: Board
    members: list[BoardMember]  # workspace members with access to the board (read or write)
    guests: list[BoardGuest]  # on the board in Trello, not members of the workspace


async def list_boards(
    session: AsyncSession, actor: Actor, organization_id: int, *, limit: int, offset: int
) -> Page[Board]:
    rules.require_admin(actor)
    statement = select(Board).where(Board.organization_id == organization_id).order_by(Board.id)
    return await paginate(session, statement, limit, offset)


async def get_board(session: AsyncSession, actor: Actor, organization_id: int, board_id: int) -> BoardPage:
    rules.require_admin(actor)
    board = await session.scalar(
        select(Board).where(Board.id == board_id, Board.organization_id == organization_id)
    )
    if board is None:
        raise NotFound("board not found")
    memberships = await session.scalars(
        select(Membership).where(Membership.organization_id == organization_id).order_by(Membership.id)
    )
    members = [
        BoardMember(membership, access)
        for membership in memberships.all()
        if (access := effective_access(membership, board.id)) != "none"
    ]
    return BoardPage(board, members, await board_guests(session, board.id))
