"""The membership API's endpoints: parse, call `membership`, answer. The rules live in `membership`."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson
import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jobs.queue import JobQueue
from membership import board_views, history, invites, members, outbox
from membership.database import Database
from membership.errors import NotFound
from membership.members import AccessChange
from membership.models import as_utc
from membership.paging import Page
from membership.rules import Actor
from receiver.api.auth import Caller, authenticated_user, organization_caller
from receiver.api.errors import BadRequest
from receiver.api.schemas import (
    MAX_ID,
    AccessUpdate,
    AuditEntryOut,
    BoardOut,
    BoardViewOut,
    InviteAccept,
    InviteCreate,
    InviteOut,
    MemberOut,
    PageItem,
    Removed,
    RoleChange,
    page_out,
)
from receiver.bodies import BodyTooLarge, ClientGone, read_bounded
from receiver.handoff import hand_to_workers

log = structlog.get_logger("receiver.api")

M = TypeVar("M", bound=BaseModel)
MAX_API_BODY_BYTES = 64 * 1024


class Paging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class AuditQuery(Paging):
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    trello_member_id: str | None = Field(default=None, pattern="^[0-9a-f]{24}$")
    board_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    since: datetime | None = None


class RecordId(Convertor[int]):
    """A store id in a path: at most 19 digits (64-bit ids), anything longer matches no route (404)
    rather than reaching `int()` (Python refuses to parse more than 4,300 digits: a 500)."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", RecordId())


class MembershipApi:
    def __init__(
        self, database: Database, queue: JobQueue, *, invite_ttl: timedelta = invites.DEFAULT_TTL
    ) -> None:
        self.database = database
        self.queue = queue
        self.invite_ttl = invite_ttl

    def routes(self) -> list[Route]:
        members_path, invites_path = "/organizations/me/members", "/organizations/me/invites"
        return [
            route(members_path, GET=self.list_members),
            route(
                members_path + "/{member_id:id}",
                GET=self.get_member,
                PATCH=self.change_role,
                DELETE=self.remove_member,
            ),
            route(members_path + "/{member_id:id}/access", PUT=self.set_access),
            route(invites_path, GET=self.list_invites, POST=self.create_invite),
            route(invites_path + "/{invite_id:id}", DELETE=self.revoke_invite),
            route("/organizations/invites/accept", POST=self.accept_invite),
            route("/organizations/me/boards", GET=self.list_boards),
            route("/organizations/me/boards/{board_id:id}", GET=self.get_board),
            route("/organizations/me/audit", GET=self.audit),
        ]

    # Members (seed 003)

    async def list_members(self, request: Request) -> Response:
        return await self.page(request, members.list_members, MemberOut)

    async def get_member(self, request: Request) -> Response:
        async with self.organization_call(request) as (session, caller, _):
            member_id = path_id(request, "member_id")
            membership = await members.get_member(session, caller.actor, caller.organization_id, member_id)
            body = MemberOut.of(membership)
        return json(body)

    async def change_role(self, request: Request) -> Response:
        raw = await read_body(request)
        async with self.organization_call(request) as (session, caller, cause):
            member_id = path_id(request, "member_id")
            change = parse_body(raw, RoleChange)
            membership = await members.change_role(
                session, caller.actor, caller.organization_id, member_id, change.role, cause=cause
            )
            body = MemberOut.of(membership)
        return json(body)

    async def set_access(self, request: Request) -> Response:
        raw = await read_body(request)
        async with self.organization_call(request) as (session, caller, cause):
            member_id = path_id(request, "member_id")
            update = parse_body(raw, AccessUpdate)
            grants = None if update.board_access is None else [a.grant() for a in update.board_access]
            change = AccessChange(
                can_read_all_boards=update.can_read_all_boards,
                can_write_all_boards=update.can_write_all_boards,
                board_access=grants,
            )
            membership = await members.set_access(
                session, caller.actor, caller.organization_id, member_id, change, cause=cause
            )
            await session.refresh(membership, ["board_access"])
            body = MemberOut.of(membership)
        return json(body)

    async def remove_member(self, request: Request) -> Response:
        async with self.organization_call(request) as (session, caller, cause):
            member_id = path_id(request, "member_id")
            removed = await members.remove_member(
                session, caller.actor, caller.organization_id, member_id, cause=cause
            )
        return json(Removed(success=True, id=removed["id"]))

    # Invites (seed 004)

    async def list_invites(self, request: Request) -> Response:
        return await self.page(
            request, functools.partial(invites.list_invites, ttl=self.invite_ttl), InviteOut
        )

    async def create_invite(self, request: Request) -> Response:
        raw = await read_body(request)
        async with self.organization_call(request) as (session, caller, cause):
            new = parse_body(raw, InviteCreate)
            invite = await invites.create_invite(
                session,
                caller.actor,
                caller.organization_id,
                email=new.email,
                role=new.role,
                can_read_all_boards=new.can_read_all_boards,
                can_write_all_boards=new.can_write_all_boards,
                board_access=[a.grant() for a in new.board_access],
                cause=cause,
                ttl=self.invite_ttl,
            )
            body = InviteOut.of(invite)
        return json(body, status=201)

    async def revoke_invite(self, request: Request) -> Response:
        async with self.organization_call(request) as (session, caller, cause):
            invite_id = path_id(request, "invite_id")
            invite = await invites.revoke_invite(
                session, caller.actor, caller.organization_id, invite_id, cause=cause
            )
            body = InviteOut.of(invite)
        return json(body)

    async def accept_invite(self, request: Request) -> Response:
        raw = await read_body(request)
        async with self.call(request) as (session, cause):
            user = await authenticated_user(session, request)
            accept = parse_body(raw, InviteAccept)
            membership = await invites.accept_invite(
                session, user, accept.token, cause=cause, ttl=self.invite_ttl
            )
            body = MemberOut.of(membership)
        return json(body)

    # Boards (Trellis's own: who can see a board, guests included)

    async def list_boards(self, request: Request) -> Response:
        return await self.page(request, board_views.list_boards, BoardOut)

    async def get_board(self, request: Request) -> Response:
        async with self.organization_call(request) as (session, caller, _):
            board_id = path_id(request, "board_id")
            page = await board_views.get_board(session, caller.actor, caller.organization_id, board_id)
            body = BoardViewOut.of(page)
        return json(body)

    # The audit trail (Trellis's own: who changed what, and why)

    async def audit(self, request: Request) -> Response:
        async with self.organization_call(request) as (session, caller, _):
            query = parse_query(request, AuditQuery)
            page = await history.organization_audit(
                session, caller.actor, caller.organization_id, member_id=query.member_id,
                trello_member_id=query.trello_member_id, board_id=query.board_id,
                since=None if query.since is None else as_utc(query.since), limit=query.limit,
                offset=query.offset,
            )  # fmt: skip
            body = page_out(page, AuditEntryOut)
        return json(body)

    async def page(self, request: Request, lister: Lister, item: PageItem) -> Response:
        """One page of the caller's organization's records, read by `lister` (which checks the rules)."""
        async with self.organization_call(request) as (session, caller, _):
            paging = parse_query(request, Paging)
            page = await lister(
                session, caller.actor, caller.organization_id, limit=paging.limit, offset=paging.offset
            )
            body = page_out(page, item)
        return json(body)

    # One transaction a request; the outbox's changes go to the workers once it is committed.

    @asynccontextmanager
    async def call(self, request: Request) -> AsyncIterator[tuple[AsyncSession, str]]:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        cause = f"api:{request.method} {request.url.path} request:{request_id[:64]}"
        structlog.contextvars.bind_contextvars(request_id=request_id[:64])
        async with self.database.transaction() as session:
            yield session, cause
        await hand_to_workers(self.queue, outbox.added_in(session))

    @asynccontextmanager
    async def organization_call(self, request: Request) -> AsyncIterator[tuple[AsyncSession, Caller, str]]:
        async with self.call(request) as (session, cause):
            user = await authenticated_user(session, request)
            yield session, await organization_caller(session, user), cause


Handler = Callable[[Request], Awaitable[Response]]


class Lister(Protocol):
    def __call__(
        self, session: AsyncSession, actor: Actor, organization_id: int, *, limit: int, offset: int
    ) -> Awaitable[Page[Any]]: ...


def route(path: str, **handlers: Handler) -> Route:
    """One route a path, whatever its methods, so that a 405 lists in `Allow` every method it takes."""

    async def dispatch(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return Route(path, dispatch, methods=list(handlers))


def json(model: BaseModel, status: int = 200) -> Response:
    return JSONResponse(model.model_dump(mode="json"), status_code=status)


def path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    if not 1 <= value <= MAX_ID:
        raise NotFound("no such record")
    return value


def parse_query(request: Request, model: type[M]) -> M:
    return model.model_validate(dict(request.query_params))


async def read_body(request: Request) -> bytes:
    """The raw body, bounded. Read before the request's transaction opens (a slow client must not hold
    it), and parsed only once the caller is authenticated (`parse_body`)."""
    try:
        return await read_bounded(request.scope["headers"], request.receive, MAX_API_BODY_BYTES)
    except BodyTooLarge:
        raise BadRequest("body too large", status=413) from None
    except ClientGone:
        raise BadRequest("client went away") from None


def parse_body(raw: bytes, model: type[M]) -> M:
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    return model.model_validate(data)  # a ValidationError becomes a 422 in receiver.api.errors
