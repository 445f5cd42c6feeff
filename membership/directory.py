"""Organizations, users and API tokens: the bootstrap an operator does from the command line."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from membership import audit
from membership.errors import Conflict, NotFound, Unprocessable
from membership.invites import valid_email
from membership.models import ApiToken, Board, Membership, Organization, User, utcnow
from membership.rules import Actor

AUTHORITIES = ("trello", "local")
TOKEN_PREFIX = "trl_"  # noqa: S105 (a prefix that makes leaked tokens easy to spot, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == valid_email(email)))


async def create_user(session: AsyncSession, email: str, name: str | None = None, *, actor: Actor) -> User:
    email = valid_email(email)
    if await user_by_email(session, email) is not None:
        raise Conflict(f"a user with email {email} exists already")
    user = User(email=email, name=name)
    session.add(user)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause="cli",
        action="user_created",
        entity="user",
        entity_id=user.id,
        organization_id=None,
        after={"email": email, "name": name},
        user_id=user.id,
    )
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(select(User).order_by(User.id))).all())


async def link_organization(
    session: AsyncSession, trello_org_id: str, *, name: str, owner_email: str, authority: str, actor: Actor
) -> Organization:
    """Create the organization linked to a Trello workspace, with its first owner."""
    if authority not in AUTHORITIES:
        raise Unprocessable(f"authority must be one of {', '.join(AUTHORITIES)}")
    if await session.scalar(select(Organization).where(Organization.trello_org_id == trello_org_id)):
        raise Conflict(f"Trello workspace {trello_org_id} is linked already")
    organization = Organization(name=name, trello_org_id=trello_org_id, authority=authority)
    session.add(organization)
    await session.flush()
    owner = await user_by_email(session, owner_email) or await create_user(session, owner_email, actor=actor)
    session.add(Membership(organization_id=organization.id, user_id=owner.id, role="owner", board_access=[]))
    if owner.active_organization_id is None:
        owner.active_organization_id = organization.id
    await session.flush()
    audit.record(
        session,
        actor=actor,
        cause="cli",
        action="organization_linked",
        entity="organization",
        entity_id=organization.id,
        organization_id=organization.id,
        after={"trello_org_id": trello_org_id, "name": name, "authority": authority, "owner": owner.email},
    )
    return organization


async def add_board(
    session: AsyncSession, organization_id: int, *, name: str, trello_board_id: str | None = None
) -> Board:
    board = Board(organization_id=organization_id, name=name, trello_board_id=trello_board_id)
    session.add(board)
    await session.flush()
    return board


async def create_token(session: AsyncSession, email: str) -> tuple[ApiToken, str]:
    """A new API token for the user; the plain token is returned here and never stored."""
    user = await user_by_email(session, email)
    if user is None:
        raise NotFound(f"no user with email {email}")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=hash_token(plain))
    session.add(token)
    await session.flush()
    return token, plain


async def revoke_token(session: AsyncSession, token_id: int) -> None:
    token = await session.get(ApiToken, token_id)
    if token is None or token.revoked_at is not None:
        raise NotFound(f"no active token {token_id}")
    token.revoked_at = utcnow()


async def authenticate(session: AsyncSession, plain: str) -> User | None:
    """The user a bearer token belongs to, or None for an unknown or revoked token."""
    statement = (
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(plain), ApiToken.revoked_at.is_(None))
    )
    return await session.scalar(statement)


async def active_token(session: AsyncSession, plain: str) -> ApiToken | None:
    """The token record of a plain token, or None for an unknown or revoked one."""
    return await session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_token(plain), ApiToken.revoked_at.is_(None))
    )


async def token_holder(session: AsyncSession, token_id: int) -> User | None:
    """The user of a token still active: what a console session signed in with that token stands on."""
    token = await session.get(ApiToken, token_id)
    return None if token is None or token.revoked_at is not None else await session.get(User, token.user_id)


@dataclass(frozen=True)
class OrganizationSummary:
    organization: Organization
    boards: int
    members: int


async def organization_summaries(session: AsyncSession) -> list[OrganizationSummary]:
    """Every organization with its boards and members counted, linked ones first."""
    boards = select(func.count()).where(Board.organization_id == Organization.id).scalar_subquery()
    members = select(func.count()).where(Membership.organization_id == Organization.id).scalar_subquery()
    rows = await session.execute(
        select(Organization, boards, members).order_by(Organization.trello_org_id.is_(None), Organization.id)
    )
    return [
        OrganizationSummary(organization, n_boards, n_members) for organization, n_boards, n_members in rows
    ]


async def linked_organization(session: AsyncSession, trello_org_id: str) -> Organization:
    organization = await session.scalar(
        select(Organization).where(Organization.trello_org_id == trello_org_id)
    )
    if organization is None:
        raise NotFound(f"Trello workspace {trello_org_id} is not linked")
    return organization


async def set_authority(
    session: AsyncSession, trello_org_id: str, authority: str, *, actor: Actor
) -> Organization:
    """Switch who is right for the workspace: Trello (mirror) or the store (enforce), audited."""
    if authority not in AUTHORITIES:
        raise Unprocessable(f"authority must be one of {', '.join(AUTHORITIES)}")
    organization = await linked_organization(session, trello_org_id)
    before = organization.authority
    organization.authority = authority
    audit.record(
        session, actor=actor, cause="cli", action="authority_changed", entity="organization",
        entity_id=organization.id, organization_id=organization.id,
        before={"authority": before}, after={"authority": authority},
    )  # fmt: skip
    return organization


async def unlink_organization(session: AsyncSession, trello_org_id: str, *, actor: Actor) -> Organization:
    """Stop following the workspace: the organization, its members, boards and history stay in the
    store, no longer linked (its boards' webhooks are the caller's to remove)."""
    organization = await linked_organization(session, trello_org_id)
    organization.trello_org_id = None
    audit.record(
        session, actor=actor, cause="cli", action="organization_unlinked", entity="organization",
        entity_id=organization.id, organization_id=organization.id,
        before={"trello_org_id": trello_org_id}, after={"trello_org_id": None},
    )  # fmt: skip
    return organization


async def workspace_boards(
    session: AsyncSession, trello_org_id: str, *, open_only: bool = False
) -> list[str]:
    """The Trello ids of a linked workspace's boards (only the open ones, if asked)."""
    organization = await linked_organization(session, trello_org_id)
    statement = select(Board.trello_board_id).where(
        Board.organization_id == organization.id, Board.trello_board_id.is_not(None)
    )
    if open_only:
        statement = statement.where(Board.closed.is_(False))
    return [board for board in (await session.scalars(statement)).all() if board is not None]
