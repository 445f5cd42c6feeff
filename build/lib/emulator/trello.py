"""Trello's REST API (`/1/...`): the calls in TRELLO.md's table, with Trello's auth, limits and errors."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from emulator.deliveries import Dispatcher, Faults
from emulator.limits import RateLimiter
from emulator.world import Board, Member, TrelloError, Webhook, Workspace, World, new_id, not_found

OAUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')

Handler = Callable[["Call"], Awaitable[Any]]


@dataclass(frozen=True)
class Credentials:
    key: str
    token: str


@dataclass
class Call:
    """One authenticated request: who makes it, and its parameters from query and body alike."""

    request: Request
    member: Member
    token: str
    params: dict[str, Any]

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def flag(self, name: str) -> bool:
        return str(self.params.get(name, "false")).lower() == "true"


class TrelloApi:
    def __init__(
        self,
        world: World,
        credentials: Credentials,
        limiter: RateLimiter,
        faults: Faults,
        dispatcher: Dispatcher,
    ) -> None:
        self.world = world
        self.credentials = credentials
        self.limiter = limiter
        self.faults = faults
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        e = self.endpoint
        return [
            Route("/1/members/me", e(self.me), methods=["GET"]),
            Route("/1/members/me/boards", e(self.my_boards), methods=["GET"]),
            Route("/1/members/me/organizations", e(self.my_workspaces), methods=["GET"]),
            Route("/1/members/{id}", e(self.get_member), methods=["GET"]),
            Route("/1/tokens/{token}", e(self.get_token), methods=["GET"]),
            Route("/1/tokens/{token}/webhooks", e(self.token_webhooks), methods=["GET"]),
            Route("/1/webhooks", e(self.create_webhook), methods=["POST"]),
            Route("/1/webhooks/{id}", e(self.get_webhook), methods=["GET"]),
            Route("/1/webhooks/{id}", e(self.update_webhook), methods=["PUT"]),
            Route("/1/webhooks/{id}", e(self.delete_webhook), methods=["DELETE"]),
            Route("/1/organizations/{id}", e(self.get_workspace), methods=["GET"]),
            Route("/1/organizations/{id}/memberships", e(self.workspace_memberships), methods=["GET"]),
            Route("/1/organizations/{id}/members", e(self.workspace_members), methods=["GET"]),
            Route("/1/organizations/{id}/members", e(self.invite_by_email), methods=["PUT"]),
            Route("/1/organizations/{id}/boards", e(self.workspace_boards), methods=["GET"]),
            Route("/1/organizations/{id}/members/{member}", e(self.set_workspace_member), methods=["PUT"]),
            Route(
                "/1/organizations/{id}/members/{member}", e(self.remove_workspace_member), methods=["DELETE"]
            ),
            Route("/1/organizations/{id}/members/{member}/all", e(self.remove_from_all), methods=["DELETE"]),
            Route("/1/organizations/{id}/members/{member}/deactivated", e(self.deactivate), methods=["PUT"]),
            Route("/1/boards/{id}", e(self.get_board), methods=["GET"]),
            Route("/1/boards/{id}/memberships", e(self.board_memberships), methods=["GET"]),
            Route("/1/boards/{id}/members", e(self.board_members), methods=["GET"]),
            Route("/1/boards/{id}/members/{member}", e(self.set_board_member), methods=["PUT"]),
            Route("/1/boards/{id}/members/{member}", e(self.remove_board_member), methods=["DELETE"]),
            Route("/1/boards/{id}/actions", e(self.board_actions), methods=["GET"]),
        ]

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authentication, then the rate limits, then injected faults, then the call: Trello's order."""

        async def serve(request: Request) -> Response:
            key, token = credentials_of(request)
            if key != self.credentials.key:
                return PlainTextResponse("invalid key", status_code=401)
            grant = self.world.tokens.get(token or "")
            if grant is None:
                return PlainTextResponse("invalid token", status_code=401)
            if (
                grant.get("date_expires")
                and datetime.fromisoformat(grant["date_expires"]) < datetime.now().astimezone()
            ):
                return PlainTextResponse("expired token", status_code=401)
            refusal, headers = self.limiter.check(key, token or "", request.url.path)
            if refusal is not None:
                return JSONResponse(
                    {"error": refusal.error, "message": refusal.message}, 429, headers=headers
                )
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            if random.random() < self.faults.error_rate:
                return PlainTextResponse("Internal Server Error", status_code=500, headers=headers)
            params: dict[str, Any] = dict(request.query_params)
            params.pop("key", None)
            params.pop("token", None)
            params.update(await body_params(request))
            call = Call(request, self.world.member(grant["member_id"]), token or "", params)
            try:
                result = await handler(call)
            except TrelloError as error:
                return PlainTextResponse(error.message, status_code=error.status, headers=headers)
            return JSONResponse(result, headers=headers)

        return serve

    # Permissions, as Trello refuses them: 401 "unauthorized permission requested".

    def workspace_of(self, call: Call, *, admin: bool = False) -> Workspace:
        """The workspace the path names, if the token's member may see it (or, `admin`, change it)."""
        workspace = self.world.workspace(call.path("id"))
        if admin:
            self.require_workspace_admin(call, workspace.id)
        else:
            self.require_visible_workspace(call, workspace.id)
        return workspace

    def board_of(self, call: Call, *, admin: bool = False) -> Board:
        """The board the path names, if the token's member may see it (or, `admin`, change it)."""
        board = self.world.board(call.path("id"))
        if admin:
            self.require_board_admin(call, board)
        else:
            self.require_visible_board(call, board)
        return board

    def require_workspace_admin(self, call: Call, workspace_id: str) -> None:
        membership = self.world.workspace(workspace_id).memberships.get(call.member.id)
        if membership is None or membership.member_type != "admin":
            raise TrelloError(401, "unauthorized permission requested")

    def require_board_admin(self, call: Call, board: Board) -> None:
        own = board.memberships.get(call.member.id)
        if own is not None and own.member_type == "admin":
            return
        if board.workspace_id is None:
            raise TrelloError(401, "unauthorized permission requested")
        self.require_workspace_admin(call, board.workspace_id)

    def require_visible_workspace(self, call: Call, workspace_id: str) -> None:
        if call.member.id not in self.world.workspace(workspace_id).memberships:
            raise TrelloError(401, "unauthorized permission requested")

    def require_visible_board(self, call: Call, board: Board) -> None:
        if call.member.id not in board.memberships:
            if board.workspace_id is None:
                raise TrelloError(401, "unauthorized permission requested")
            self.require_visible_workspace(call, board.workspace_id)

    # Members and tokens

    async def me(self, call: Call) -> dict[str, Any]:
        return {**call.member.public(), "email": call.member.email}

    async def get_member(self, call: Call) -> dict[str, Any]:
        member = self.world.member(call.path("id"))
        return {**member.public(), "email": member.email} if member.id == call.member.id else member.public()

    async def my_boards(self, call: Call) -> list[dict[str, Any]]:
        boards = [b for b in self.world.boards.values() if call.member.id in b.memberships]
        return [board_json(b) for b in boards if keep_board(b, call.params.get("filter", "all"))]

    async def my_workspaces(self, call: Call) -> list[dict[str, Any]]:
        return [w.summary() for w in self.world.workspaces.values() if call.member.id in w.memberships]

    async def get_token(self, call: Call) -> dict[str, Any]:
        token = call.path("token")
        if token != call.token:
            raise TrelloError(401, "invalid token")
        grant = self.world.tokens[token]
        return {
            "id": grant["id"],
            "idMember": grant["member_id"],
            "dateCreated": grant["date_created"],
            "dateExpires": grant.get("date_expires"),
            "permissions": [
                {"idModel": "*", "modelType": "Board", "read": True, "write": True},
                {"idModel": "*", "modelType": "Organization", "read": True, "write": True},
            ],
        }

    # Webhooks

    async def token_webhooks(self, call: Call) -> list[dict[str, Any]]:
        if call.path("token") != call.token:
            raise TrelloError(401, "invalid token")
        return [w.as_json() for w in self.world.webhooks.values() if w.token == call.token]

    async def create_webhook(self, call: Call) -> dict[str, Any]:
        url, id_model = call.params.get("callbackURL"), call.params.get("idModel")
        if not url or not id_model:
            raise TrelloError(
                400, "invalid value for callbackURL" if not url else "invalid value for idModel"
            )
        self.world.model(str(id_model))  # invalid id: 404 before any callback check
        if any(
            w.id_model == id_model and w.callback_url == url and w.token == call.token
            for w in self.world.webhooks.values()
        ):
            raise TrelloError(400, "A webhook with that callback, model, and token already exists")
        status = await self.dispatcher.check_callback(str(url))
        if status != 200:
            raise TrelloError(400, f"URL ({url}) did not return 200 status code, got {status}")
        webhook = Webhook(
            id=new_id(),
            id_model=str(id_model),
            callback_url=str(url),
            token=call.token,
            description=str(call.params.get("description", "")),
            active=str(call.params.get("active", "true")).lower() != "false",
        )
        self.world.webhooks[webhook.id] = webhook
        return webhook.as_json()

    def own_webhook(self, call: Call) -> Webhook:
        webhook = self.world.webhook(call.path("id"))
        if webhook.token != call.token:
            raise not_found()
        return webhook

    async def get_webhook(self, call: Call) -> dict[str, Any]:
        return self.own_webhook(call).as_json()

    async def update_webhook(self, call: Call) -> dict[str, Any]:
        webhook = self.own_webhook(call)
        if "callbackURL" in call.params:
            webhook.callback_url = str(call.params["callbackURL"])
        if "description" in call.params:
            webhook.description = str(call.params["description"])
        if "active" in call.params:
            webhook.active = str(call.params["active"]).lower() == "true"
            if webhook.active:
                webhook.consecutive_failures, webhook.first_consecutive_fail_date = 0, None
        return webhook.as_json()

    async def delete_webhook(self, call: Call) -> dict[str, Any]:
        webhook = self.own_webhook(call)
        del self.world.webhooks[webhook.id]
        return {"_value": None}

    # Workspaces

    async def get_workspace(self, call: Call) -> dict[str, Any]:
        workspace = self.workspace_of(call)
        return {
            **workspace.summary(),
            "premiumFeatures": ["observers"] if workspace.plan in ("premium", "enterprise") else [],
        }

    async def workspace_memberships(self, call: Call) -> list[dict[str, Any]]:
        workspace = self.workspace_of(call)
        with_member = call.flag("member")
        wanted = call.params.get("filter", "all")
        return [
            self.membership_row(m.id, m.member_id, m.member_type, with_member, m.unconfirmed, m.deactivated)
            for m in workspace.memberships.values()
            if wanted == "all" or (wanted == "admins") == (m.member_type == "admin")
        ]

    async def workspace_members(self, call: Call) -> list[dict[str, Any]]:
        workspace = self.workspace_of(call)
        return [self.world.members[m].public() for m in workspace.memberships]

    async def workspace_boards(self, call: Call) -> list[dict[str, Any]]:
        workspace = self.workspace_of(call)
        boards = [
            b
            for b in self.world.workspace_boards(workspace.id)
            if keep_board(b, call.params.get("filter", "all"))
        ]
        fields = call.params.get("fields")
        return [pick(board_json(b), fields) for b in boards]

    async def invite_by_email(self, call: Call) -> dict[str, Any]:
        workspace = self.workspace_of(call, admin=True)
        email = str(call.params.get("email", ""))
        if "@" not in email:
            raise TrelloError(400, "invalid email")
        member_type = str(call.params.get("type", "normal"))
        member = self.world.invite_to_workspace(
            workspace.id, email, str(call.params.get("fullName", "")), member_type, by=call.member.id
        )
        return {**self.members_answer(workspace.id, workspace.memberships), "idMember": member.id}

    async def set_workspace_member(self, call: Call) -> dict[str, Any]:
        workspace = self.workspace_of(call, admin=True)
        member = self.world.member(call.path("member"))
        self.world.set_workspace_member(
            workspace.id, member.id, str(call.params.get("type", "normal")), by=call.member.id
        )
        return {
            "id": workspace.id,
            "members": [self.world.members[m].public() for m in workspace.memberships],
        }

    async def remove_workspace_member(self, call: Call) -> dict[str, Any]:
        return await self._remove_from_workspace(call, from_boards=False)

    async def remove_from_all(self, call: Call) -> dict[str, Any]:
        return await self._remove_from_workspace(call, from_boards=True)

    async def _remove_from_workspace(self, call: Call, *, from_boards: bool) -> dict[str, Any]:
        workspace = self.workspace_of(call, admin=True)
        member = self.world.member(call.path("member"))
        self.world.remove_workspace_member(
            workspace.id, member.id, by=call.member.id, from_boards=from_boards
        )
        return {
            "id": workspace.id,
            "members": [self.world.members[m].public() for m in workspace.memberships],
        }

    async def deactivate(self, call: Call) -> dict[str, Any]:
        workspace = self.workspace_of(call, admin=True)
        member = self.world.member(call.path("member"))
        value = str(call.params.get("value", "")).lower()
        if value not in ("true", "false"):
            raise TrelloError(400, "invalid value for value")
        membership = self.world.set_deactivated(workspace.id, member.id, value == "true")
        return {"id": membership.id, "idMember": member.id, "deactivated": membership.deactivated}

    # Boards

    async def get_board(self, call: Call) -> dict[str, Any]:
        board = self.board_of(call)
        return board_json(board)

    async def board_memberships(self, call: Call) -> list[dict[str, Any]]:
        board = self.board_of(call)
        with_member = call.flag("member")
        return [
            self.membership_row(m.id, m.member_id, m.member_type, with_member)
            for m in board.memberships.values()
        ]

    def members_answer(self, model_id: str, member_ids: Iterable[str]) -> dict[str, Any]:
        """What Trello answers a membership change with: the model and its members."""
        return {"id": model_id, "members": [self.world.members[m].public() for m in member_ids]}

    def membership_row(
        self,
        id: str,
        member_id: str,
        member_type: str,
        with_member: bool,
        unconfirmed: bool = False,
        deactivated: bool = False,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": id,
            "idMember": member_id,
            "memberType": member_type,
            "unconfirmed": unconfirmed,
            "deactivated": deactivated,
        }
        if with_member:
            row["member"] = self.world.members[member_id].public()
        return row

    async def board_members(self, call: Call) -> list[dict[str, Any]]:
        board = self.board_of(call)
        return [self.world.members[m].public() for m in board.memberships]

    async def set_board_member(self, call: Call) -> dict[str, Any]:
        board = self.board_of(call, admin=True)
        member = self.world.member(call.path("member"))
        self.world.set_board_member(
            board.id, member.id, str(call.params.get("type", "normal")), by=call.member.id
        )
        return self.members_answer(board.id, board.memberships)

    async def remove_board_member(self, call: Call) -> dict[str, Any]:
        board = self.board_of(call, admin=True)
        member = self.world.member(call.path("member"))
        self.world.remove_board_member(board.id, member.id, by=call.member.id)
        return self.members_answer(board.id, board.memberships)

    async def board_actions(self, call: Call) -> list[dict[str, Any]]:
        board = self.board_of(call)
        try:
            limit = int(call.params.get("limit", 50))
        except ValueError:
            raise TrelloError(400, "invalid value for limit") from None
        if not 0 <= limit <= 1000:
            raise TrelloError(400, "invalid value for limit")
        kinds = set(str(call.params.get("filter", "all")).split(","))
        on_board = [
            (i, a)
            for i, a in enumerate(self.world.actions)
            if a.body["data"].get("board", {}).get("id") == board.id
        ]
        since, before = call.params.get("since"), call.params.get("before")
        picked = [
            a.body
            for i, a in on_board
            if ("all" in kinds or a.body["type"] in kinds)
            and (since is None or self._after(i, a.body, str(since)))
            and (before is None or self._before(i, a.body, str(before)))
        ]
        return list(reversed(picked))[:limit]  # newest first, as Trello lists them

    def _position(self, marker: str) -> int | None:
        return next((i for i, a in enumerate(self.world.actions) if a.id == marker), None)

    def _after(self, index: int, action: dict[str, Any], marker: str) -> bool:
        position = self._position(marker)
        return index > position if position is not None else str(action["date"]) > marker

    def _before(self, index: int, action: dict[str, Any], marker: str) -> bool:
        position = self._position(marker)
        return index < position if position is not None else str(action["date"]) < marker


def credentials_of(request: Request) -> tuple[str | None, str | None]:
    """Key and token from the OAuth header (preferred: they stay out of logs) or the query string."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("oauth "):
        fields = dict(OAUTH_FIELD.findall(header))
        return fields.get("oauth_consumer_key"), fields.get("oauth_token")
    return request.query_params.get("key"), request.query_params.get("token")


async def body_params(request: Request) -> dict[str, Any]:
    if request.method not in ("POST", "PUT"):
        return {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            data = await request.json()
        except ValueError:
            raise TrelloError(400, "invalid json") from None
        return data if isinstance(data, dict) else {}
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    return {}


def board_json(board: Board) -> dict[str, Any]:
    return {**board.summary(), "closed": board.closed, "idOrganization": board.workspace_id}


def keep_board(board: Board, wanted: str) -> bool:
    return wanted == "all" or (wanted == "open") != board.closed


def pick(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields or fields == "all":
        return record
    names = {"id", *fields.split(",")}
    return {k: v for k, v in record.items() if k in names}
