"""Trello's REST API (`/1/...`): authentication, limits, faults and permissions, then the resources.

Each resource module in `emulator.rest` lists its routes as (method, path, handler); a handler takes
this API and the authenticated `Call` and returns what Trello would answer as JSON, or raises a
`TrelloError` that is answered as Trello answers it (plain text, with its status).
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from emulator.calls import Call, Credentials, read_request
from emulator.deliveries import Dispatcher, Faults
from emulator.limits import RateLimiter
from emulator.rest import boards, members, organizations, webhooks
from emulator.world import Board, TrelloError, Workspace, World

Handler = Callable[["TrelloApi", Call], Awaitable[Any]]
RouteSpec = tuple[str, str, Handler]

__all__ = ["Credentials", "TrelloApi"]


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
        """Every resource's routes; a path's methods share one route, so another method is Trello's 404."""
        specs: list[RouteSpec] = [*members.ROUTES, *webhooks.ROUTES, *organizations.ROUTES, *boards.ROUTES]
        by_path: dict[str, dict[str, Handler]] = {}
        for method, path, handler in specs:
            by_path.setdefault(path, {})[method] = handler
        return [
            Route(path, self.endpoint(handlers), methods=list(handlers)) for path, handlers in by_path.items()
        ]

    def endpoint(self, handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
        """Authentication, then the rate limits, then injected faults, then the call: Trello's order."""

        async def serve(request: Request) -> Response:
            try:
                key, token, params = await read_request(request)
            except TrelloError as error:
                return PlainTextResponse(error.message, status_code=error.status)
            if key != self.credentials.key:
                return PlainTextResponse("invalid key", status_code=401)
            grant = self.world.tokens.get(token or "")
            if grant is None:
                return PlainTextResponse("invalid token", status_code=401)
            expires = grant.get("date_expires")
            if expires and datetime.fromisoformat(expires) < datetime.now().astimezone():
                return PlainTextResponse("expired token", status_code=401)
            refusal, headers = self.limiter.check(key, token or "", request.url.path)
            if refusal is not None:
                body = {"error": refusal.error, "message": refusal.message}
                return JSONResponse(body, 429, headers=headers)
            with self.limiter.counters.answering(f"{request.method} {request.url.path}"):
                latency = self.faults.latency_ms + random.uniform(0, self.faults.latency_spread_ms)
                if latency:
                    await asyncio.sleep(latency / 1000)
                if random.random() < self.faults.error_rate:
                    return PlainTextResponse("Internal Server Error", status_code=500, headers=headers)
                call = Call(request, self.world.member(grant["member_id"]), token or "", params)
                handler = functools.partial(handlers[request.method], self)
                try:
                    result = await handler(call)
                except TrelloError as error:
                    return PlainTextResponse(error.message, status_code=error.status, headers=headers)
            return JSONResponse(result, headers=headers)

        return serve

    # Permissions, as Trello refuses them: 401 "unauthorized permission requested".

    def workspace_of(self, call: Call, *, admin: bool = False, name: str = "id") -> Workspace:
        """The workspace the path names, if the token's member may see it (or, `admin`, change it)."""
        workspace = self.world.workspace(call.path(name))
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

    def require_own_token(self, call: Call) -> None:
        if call.path("token") != call.token:
            raise TrelloError(401, "invalid token")
