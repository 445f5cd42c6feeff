"""Organization invites: list pending, create, revoke, accept."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit, outbox, rules
from membership.errors import Conflict, NotFound, Unprocessable
from membership.members import (
    BoardGrant,
    grants_of,
    lock_organization,
    membership_of,
    organization_board_ids,
    regrant,
    snapshot,
)
from membership.models import Invite, InviteBoardAccess, Membership, User, as_utc, utcnow
from membership.paging import Page, paginate
from membership.rules import Actor
from membership.vocabulary import higher_role

# Deliberately plain: one @, something on both sides, a dot in the domain, no spaces. Whether the address
# exists is the invitee's to prove by accepting.
# No spaces, no control characters (a NUL is refused by PostgreSQL itself), one @, a dot in the domain.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
# What an invite token can be: 24 URL-safe characters, as `create_invite` makes them.
TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
EMAIL = re.compile(EMAIL_PATTERN)
TOKEN_BYTES = 18  # base64url of 18 bytes is exactly 24 URL-safe characters
# How long an invite can be accepted (`TRELLIS_INVITE_TTL_DAYS`): an older one answers as an unknown one.
DEFAULT_TTL = timedelta(days=14)


def valid_email(email: str) -> str:
    normalised = rules.normalise_email(email)
    if not normalised or len(normalised) > 320 or not EMAIL.fullmatch(normalised):
        raise Unprocessable("email is empty or invalid")
    return normalised


def invite_snapshot(invite: Invite) -> dict[str, Any]:
    return {
        "email": invite.email,
        "role": invite.role,
        "can_read_all_boards": invite.can_read_all_boards,
        "can_write_all_boards": invite.can_write_all_boards,
        "board_access": grants_of(invite.board_access),
    }


def pending(organization_id: int, ttl: timedelta) -> Any:
    """The condition of an organization's pending invites: not accepted, and not expired."""
    return (
        (Invite.organization_id == organization_id)
        & Invite.accepted_at.is_(None)
        & (Invite.created_at >= utcnow() - ttl)
    )


def expired(invite: Invite, ttl: timedelta) -> bool:
    return as_utc(invite.created_at) < datetime.now(UTC) - ttl


async def list_invites(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    *,
    limit: int,
    offset: int,
    ttl: timedelta = DEFAULT_TTL,
) -> Page[Invite]:
    rules.require_admin(actor)
    statement = (
        select(Invite)
        .where(pending(organization_id, ttl))
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    )
    return await paginate(session, statement, limit, offset)


async def create_invite(
    session: AsyncSession,
    actor: Actor,
    organization_id: int,
    *,
    email: str,
    role: str,
    can_read_all_boards: bool = False,
    can_write_all_boards: bool = False,
    board_access: list[BoardGrant] | None = None,
    cause: str,
    ttl: timedelta = DEFAULT_TTL,
) -> Invite:
    """A new invite. At most one pending invite an email and organization: a second is a 409 (revoke the
    first to change it), so that no forgotten invite outlives the one that replaced it."""
    rules.check_invite_role(actor, role)
    email = valid_email(email)
    member = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, User.email == email)
    )
    if member is not None:
        raise Conflict("a user with this email is already a member of the organization")
    await lock_organization(session, organization_id)  # two invites for one email at once: one wins
    waiting = await session.scalar(
        select(Invite.id).where(pending(organization_id, ttl), Invite.email == email)
    )
    if waiting is not None:
        raise Conflict(f"invite {waiting} for this email is still pending: revoke it to invite again")
    grants = board_access or []
    rules.check_boards_belong(
        [g.board_id for g in grants], await organization_board_ids(session, organization_id)
    )
    invite = Invite(
        organization_id=organization_id,
        email=email,
        role=role,
        can_read_all_boards=can_read_all_boards,
        can_write_all_boards=can_write_all_boards,
        token=secrets.token_urlsafe(TOKEN_BYTES),
        invited_by_user_id=actor.user_id,
        board_access=[
            InviteBoardAccess(board_id=g.board_id, can_read=g.can_read, can_write=g.can_write) for g in grants
        ],
    )
    session.add(invite)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="invite_created",
        entity="invite",
        entity_id=invite.id,
        organization_id=organization_id,
        after=invite_snapshot(invite),
        user_id=await _user_id_of(session, invite.email),
    )
    return invite


async def revoke_invite(
    session: AsyncSession, actor: Actor, organization_id: int, invite_id: int, *, cause: str
) -> Invite:
    """Delete a pending invite with its board access records; its token no longer works."""
    rules.require_admin(actor)
    invite = await session.scalar(
        select(Invite).where(
            Invite.id == invite_id, Invite.organization_id == organization_id, Invite.accepted_at.is_(None)
        )
    )
    if invite is None:
        raise NotFound("invite not found")  # an expired one can still be revoked: it is tidied away
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="invite_revoked",
        entity="invite",
        entity_id=invite.id,
        organization_id=organization_id,
        before=invite_snapshot(invite),
        user_id=await _user_id_of(session, invite.email),
    )
    await session.delete(invite)
    await session.flush()
    return invite


async def accept_invite(
    session: AsyncSession, user: User, token: str, *, cause: str, ttl: timedelta = DEFAULT_TTL
) -> Membership:
    """Join the invite's organization, or merge its permissions into the membership the user has."""
    # A string that cannot be a token is answered like an unknown one, without asking the database.
    invite = None
    if TOKEN.fullmatch(token):
        invite = await session.scalar(select(Invite).where(Invite.token == token).with_for_update())
    if invite is None or invite.accepted_at is not None or expired(invite, ttl):
        raise NotFound("invalid token, or the invite was already accepted")
    rules.check_invite_acceptor(invite.email, user.email)
    organization_id = invite.organization_id
    await lock_organization(session, organization_id)
    actor = Actor(name=f"user:{user.id}", user_id=user.id)

    membership = await membership_of(session, organization_id, user.id)
    before = snapshot(membership) if membership is not None else None
    if membership is None:
        membership = Membership(
            organization_id=organization_id,
            user_id=user.id,
            role=invite.role,
            can_read_all_boards=invite.can_read_all_boards,
            can_write_all_boards=invite.can_write_all_boards,
            board_access=[],
        )
        session.add(membership)
    else:
        membership.role = higher_role(membership.role, invite.role)
        membership.can_read_all_boards |= invite.can_read_all_boards
        membership.can_write_all_boards |= invite.can_write_all_boards
    membership.board_access = regrant(membership.board_access, merged_grants(membership, invite))

    invite.accepted_by_user_id = user.id
    invite.accepted_at = utcnow()
    if user.active_organization_id is None:
        user.active_organization_id = organization_id
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause=cause,
        action="invite_accepted",
        entity="membership",
        entity_id=membership.id,
        organization_id=organization_id,
        before=before,
        after=snapshot(membership),
        user_id=user.id,
        trello_member_id=user.trello_member_id,
    )
    await outbox.add(session, organization_id=organization_id, user_id=user.id, kind="onboard", cause=cause)
    await session.refresh(membership, ["board_access"])
    return membership


def merged_grants(membership: Membership, invite: Invite) -> list[BoardGrant]:
    """Per board, the union of what the membership had and what the invite grants."""
    grants = {a.board_id: (a.can_read, a.can_write) for a in membership.board_access}
    for access in invite.board_access:
        read, write = grants.get(access.board_id, (False, False))
        grants[access.board_id] = (read or access.can_read, write or access.can_write)
    return [BoardGrant(board, read, write) for board, (read, write) in sorted(grants.items())]


async def _user_id_of(session: AsyncSession, email: str) -> int | None:
    """The user an invite's email already belongs to, if any: their history shows the invite too."""
    return await session.scalar(select(User.id).where(User.email == email))
