"""Bearer-token authentication, and who the caller is in their active organization."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from membership.directory import authenticate
from membership.errors import Forbidden
from membership.members import membership_of
from membership.models import User
from membership.rules import Actor
from receiver.api.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    user: User
    organization_id: int
    actor: Actor


async def authenticated_user(session: AsyncSession, request: Request) -> User:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized
    user = await authenticate(session, token.strip())
    if user is None:
        raise Unauthorized
    return user


async def organization_caller(session: AsyncSession, user: User) -> Caller:
    """The caller as a member of their active organization (the `me` of `/organizations/me`)."""
    organization_id = user.active_organization_id
    membership = None if organization_id is None else await membership_of(session, organization_id, user.id)
    if organization_id is None or membership is None:
        raise Forbidden("this needs membership of an organization")
    actor = Actor(name=f"user:{user.id}", user_id=user.id, membership_id=membership.id, role=membership.role)
    return Caller(user=user, organization_id=organization_id, actor=actor)
