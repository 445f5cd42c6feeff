"""Organization members: list, view, change role, change board access, remove.

Every change is checked against `membership.rules`, audited, and put in the outbox for Trello, all in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit, outbox, rules
from membership.errors import NotFound
from membership.models import (
    Board,
    BoardAccess,
    Invite,
    InviteBoardAccess,
    Membership,
    Organization,
    User,
)
from membership.paging import Page, paginate
from membership.rules import Actor


@dataclass(frozen=True)
class BoardGrant:
    board_id: int
    can_read: bool = False
    can_write: bool = False


@dataclass(frozen=True)
class AccessChange:
    """What PUT .../access replaces; a field left as None is kept as it is."""

    can_read_all_boards: bool | None = None
    can_write_all_boards: bool | None = None
    board_access: list[BoardGrant] | None = None


def regrant(current: list[BoardAccess], grants: list[BoardGrant]) -> list[BoardAccess]:
    """The board access records after `grants` replace `current`: rows for boards kept are updated in
    place (never deleted and inserted again, which would trip the unique key), the rest are orphaned."""
    by_board = {access.board_id: access for access in current}
    records = []
    for grant in grants:
        access = by_board.get(grant.board_id) or BoardAccess(board_id=grant.board_id)
        access.can_read, access.can_write = grant.can_read, grant.can_write
        records.append(access)
    return records


def grants_of(records: Sequence[BoardAccess | InviteBoardAccess]) -> list[dict[str, Any]]:
    """Board access records as plain data, by board."""
    return [
        {"board_id": a.board_id, "can_read": a.can_read, "can_write": a.can_write}
        for a in sorted(records, key=lambda a: a.board_id)
    ]


def snapshot(membership: Membership) -> dict[str, Any]:
    """The membership's permissions, as the audit log records them."""
    return {
        "role": membership.role,
        "can_read_all_boards": membership.can_read_all_boards,
        "can_write_all_boards": membership.can_write_all_boards,
        "board_access": grants_of(membership.board_access),
    }


async def lock_organization(session: AsyncSession, organization_id: int) -> Organization:
    """Serialise changes that count owners: SELECT ... FOR UPDATE on PostgreSQL (SQLite's BEGIN
    IMMEDIATE already lets one writer in at a time)."""
    organization = (
        await session.execute(
            select(Organization).where(Organization.id == organization_id).with_for_update()
        )
    ).scalar_one_or_none()
    if organization is None:
        raise NotFound("organization not found")
    return organization


async def owner_count(session: AsyncSession, organization_id: int) -> int:
    statement = select(func.count()).where(
        Membership.organization_id == organization_id, Membership.role == "owner"
    )
    return (await session.execute(statement)).scalar_one()


async def organization_board_ids(session: AsyncSession, organization_id: int) -> set[int]:
    return set(
        (await session.scalars(select(Board.id).where(Board.organization_id == organization_id))).all()
    )


async def membership_of(session: AsyncSession, organization_id: int, user_id: int) -> Membership | None:
    statement = select(Membership).where(
        Membership.organization_id == organization_id, Membership.user_id == user_id
    )
    return (await session.scalars(statement)).one_or_none()


async def find_member(session: AsyncSession, organization_id: int, member_id: int) -> Membership:
    """The membership `member_id` of this organization; another organization's is as good as absent."""
    statement = select(Membership).where(
        Membership.id == member_id, Membership.organization_id == organization_id
    )
    membership = (await session.scalars(statement)).one_or_none()
    if membership is None:
        raise NotFound("member not found")
    return membership


async def list_members(
    session: AsyncSession, actor: Actor, organization_id: int, *, limit: int, offset: int
) -> Page[Membership]:
    statement = select(Membership).where(Membership.organization_id == organization_id)
    if not actor.is_admin:
        statement = statement.where(Membership.id == actor.membership_id)
    return await paginate(session, statement.order_by(Membership.id), limit, offset)


async def get_member(session: AsyncSession, actor: Actor, organization_id: int, member_id: int) -> Membership:
    membership = await find_member(session, organization_id, member_id)
    rules.check_can_view(actor, membership.id)
    return membership


async def change_role(
    session: AsyncSession, actor: Actor, organization_id: int, member_id: int, role: str, *, cause: str
) -> Membership:
    await lock_organization(session, organization_id)
    membership = await find_member(session, organization_id, member_id)
    rules.check_role_change(actor, membership.role, role, await owner_count(session, organization_id))
    if role != membership.role:
        before = snapshot(membership)
        membership.role = role
        await _changed(session, actor, cause, "role_changed", membership, before)
    return membership


async def set_access(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    member_id: int,
    change: AccessChange,
    *,
    cause: str,
) -> Membership:
    rules.require_admin(actor)
    membership = await find_member(session, organization_id, member_id)
    if change.board_access is not None:
        requested = [grant.board_id for grant in change.board_access]
        rules.check_boards_belong(requested, await organization_board_ids(session, organization_id))
    before = snapshot(membership)
    if change.can_read_all_boards is not None:
        membership.can_read_all_boards = change.can_read_all_boards
    if change.can_write_all_boards is not None:
        membership.can_write_all_boards = change.can_write_all_boards
    if change.board_access is not None:
        membership.board_access = regrant(membership.board_access, change.board_access)
    if snapshot(membership) != before:
        await _changed(session, actor, cause, "access_changed", membership, before)
    return membership


async def revoke_pending_invites(
    session: AsyncSession, actor: Actor, organization_id: int, user: User, *, cause: str
) -> None:
    """A removed member's other invites to the organization die with the membership: accepting one
    would bring back someone an admin just removed."""
    if user.email is None:
        return
    statement = select(Invite).where(
        Invite.organization_id == organization_id, Invite.email == user.email, Invite.accepted_at.is_(None)
    )
    for invite in (await session.scalars(statement)).all():
        audit.record(
            session, actor=actor, cause=cause, action="invite_revoked", entity="invite", entity_id=invite.id,
            organization_id=organization_id, before={"email": invite.email, "role": invite.role},
            user_id=user.id,
        )  # fmt: skip
        await session.delete(invite)


async def remove_member(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    member_id: int,
    *,
    cause: str,
    push: bool = True,
) -> dict[str, Any]:
    """Remove the membership with its board access records; returns what was removed.

    `push=False` when the removal comes from Trello: there is nothing for Trello to follow.
    """
    await lock_organization(session, organization_id)
    membership = await find_member(session, organization_id, member_id)
    rules.check_removal(
        actor, membership.user_id, membership.role, await owner_count(session, organization_id)
    )
    removed = {"id": membership.id, "user_id": membership.user_id, **snapshot(membership)}
    user = membership.user
    await session.delete(membership)
    await session.flush()
    if user.active_organization_id == organization_id:
        # The user's active organization switches to another of theirs, or to none.
        statement = (
            select(Membership.organization_id).where(Membership.user_id == user.id).order_by(Membership.id)
        )
        user.active_organization_id = (await session.scalars(statement)).first()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="member_removed",
        entity="membership",
        entity_id=removed["id"],
        organization_id=organization_id,
        before=removed,
        user_id=user.id,
        trello_member_id=user.trello_member_id,
    )
    await revoke_pending_invites(session, actor, organization_id, user, cause=f"{cause}: member removed")
    if push:
        await outbox.add(
            session, organization_id=organization_id, user_id=user.id, kind="remove", cause=cause
        )
    return removed


async def _changed(
    session: AsyncSession,
    actor: Actor,
    cause: str,
    action: str,
    membership: Membership,
    before: dict[str, Any],
) -> None:
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action=action,
        entity="membership",
        entity_id=membership.id,
        organization_id=membership.organization_id,
        user_id=membership.user_id,
        before=before,
        after=snapshot(membership),
    )
    await outbox.add(
        session,
        organization_id=membership.organization_id,
        user_id=membership.user_id,
        kind="update",
        cause=cause,
    )
