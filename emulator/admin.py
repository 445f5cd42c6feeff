"""`/_emulator/...`: what a test or the demo does to the emulated world from outside the API.

A person clicking in Trello (add someone to a board, remove them from the workspace, make an admin, create
a board), fault injection, limits, counters and the delivery log. Changes made here produce the same
actions and webhook deliveries as changes made through the REST API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import shapes
from emulator.deliveries import SIGNATURE_ENCODINGS, Dispatcher, Faults
from emulator.limits import Limits, RateLimiter
from emulator.world import TrelloError, World

Handler = Callable[[Request], Awaitable[Any]]


class AdminApi:
    def __init__(self, world: World, limiter: RateLimiter, faults: Faults, dispatcher: Dispatcher) -> None:
        self.world = world
        self.limiter = limiter
        self.faults = faults
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        e, base = self.endpoint, "/_emulator"
        return [
            Route(base + "/state", e(self.state), methods=["GET"]),
            Route(base + "/members", e(self.create_member), methods=["POST"]),
            Route(base + "/organizations", e(self.create_workspace), methods=["POST"]),
            Route(base + "/organizations/{id}/boards", e(self.create_board), methods=["POST"]),
            Route(
                base + "/organizations/{id}/members/{member}", e(self.set_workspace_member), methods=["PUT"]
            ),
            Route(
                base + "/organizations/{id}/members/{member}",
                e(self.remove_workspace_member),
                methods=["DELETE"],
            ),
            Route(base + "/boards/{id}", e(self.update_board), methods=["PUT"]),
            Route(base + "/boards/{id}", e(self.delete_board), methods=["DELETE"]),
            Route(base + "/boards/{id}/copy", e(self.copy_board), methods=["POST"]),
            Route(base + "/members/{member}/confirm", e(self.confirm_member), methods=["POST"]),
            Route(base + "/members/{member}/deactivated", e(self.deactivate_member), methods=["PUT"]),
            Route(base + "/boards/{id}/members/{member}", e(self.set_board_member), methods=["PUT"]),
            Route(base + "/boards/{id}/members/{member}", e(self.remove_board_member), methods=["DELETE"]),
            Route(base + "/signing", e(self.set_signing), methods=["PUT"]),
            Route(base + "/faults", e(self.get_faults), methods=["GET"]),
            Route(base + "/faults", e(self.set_faults), methods=["PUT"]),
            Route(base + "/limits", e(self.set_limits), methods=["PUT"]),
            Route(base + "/counters", e(self.counters), methods=["GET"]),
            Route(base + "/counters/reset", e(self.reset_counters), methods=["POST"]),
            Route(base + "/deliveries", e(self.deliveries), methods=["GET"]),
            Route(base + "/deliveries/settle", e(self.settle), methods=["POST"]),
        ]

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            try:
                return JSONResponse(await handler(request))
            except TrelloError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)
            except (KeyError, ValueError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)

        return serve

    async def body(self, request: Request) -> dict[str, Any]:
        if not await request.body():
            return {}
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def person(self, request: Request, body: dict[str, Any], workspace_id: str | None) -> str:
        """Who clicks: `by` if given, else an admin of the workspace (a person, so not the token's owner)."""
        by = body.get("by") or request.query_params.get("by")
        if by:
            return self.world.member(str(by)).id
        owners = {grant["member_id"] for grant in self.world.tokens.values()}
        workspaces = (
            [self.world.workspace(workspace_id)] if workspace_id else list(self.world.workspaces.values())
        )
        admins = [m.member_id for w in workspaces for m in w.memberships.values() if m.member_type == "admin"]
        people = [a for a in admins if a not in owners] or admins
        if not people:
            raise ValueError("no workspace admin to act: pass 'by'")
        return people[0]

    async def state(self, request: Request) -> dict[str, Any]:
        w = self.world
        return {
            "members": [{**m.public(), "email": m.email} for m in w.members.values()],
            "workspaces": [
                {
                    **ws.summary(),
                    "plan": ws.plan,
                    "memberships": [
                        {"idMember": m.member_id, "memberType": m.member_type, "unconfirmed": m.unconfirmed,
                         "deactivated": m.deactivated}
                        for m in ws.memberships.values()
                    ],
                }
                for ws in w.workspaces.values()
            ],
            "boards": [
                {
                    **b.summary(),
                    "closed": b.closed,
                    "idOrganization": b.workspace_id,
                    "memberships": [
                        {"idMember": m.member_id, "memberType": m.member_type, "unconfirmed": m.unconfirmed,
                         "deactivated": m.deactivated}
                        for m in b.memberships.values()
                    ],
                }
                for b in w.boards.values()
            ],
            "webhooks": [h.as_json() for h in w.webhooks.values()],
            "actions": len(w.actions),
        }  # fmt: skip

    async def create_member(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        member = self.world.add_member_account(
            body["username"], body.get("fullName", body["username"]), body.get("email")
        )
        return {**member.public(), "email": member.email}

    async def create_workspace(self, request: Request) -> dict[str, Any]:
        """A new workspace: `{"name", "displayName"?, "plan"?, "members": [{"username", "memberType"}]}`."""
        body = await self.body(request)
        workspace = self.world.add_workspace(
            body["name"], body.get("displayName", body["name"]), body.get("plan", "standard")
        )
        for member in body.get("members", []):
            found = self.world.member(member["username"])
            self.world.set_workspace_member(
                workspace.id, found.id, member.get("memberType", "normal"), by=found.id
            )
        return shapes.organization(workspace, "all")

    async def create_board(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        workspace_id = request.path_params["id"]
        board = self.world.create_board(
            workspace_id, body["name"], by=self.person(request, body, workspace_id)
        )
        return board.summary()

    async def update_board(self, request: Request) -> dict[str, Any]:
        """A person closes, reopens, renames or moves a board: `{"closed"?, "name"?, "idOrganization"?}`
        (`idOrganization` null: out of any workspace)."""
        body = await self.body(request)
        board = self.world.board(request.path_params["id"])
        by = self.person(request, body, board.workspace_id)
        if "name" in body:
            self.world.rename_board(board.id, str(body["name"]), by)
        if "idOrganization" in body:
            self.world.move_board(board.id, body["idOrganization"] or None, by)
        if "closed" in body:
            self.world.set_board_closed(board.id, bool(body["closed"]), by)
        return shapes.board(board, "all")

    async def delete_board(self, request: Request) -> dict[str, Any]:
        self.world.delete_board(request.path_params["id"])
        return {"_value": None}

    async def copy_board(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        source = self.world.board(request.path_params["id"])
        workspace_id = body.get("idOrganization", source.workspace_id)
        by = self.person(request, body, workspace_id)
        copy = self.world.create_board(workspace_id, body.get("name") or source.name, by=by, source=source.id)
        return shapes.board(copy, "all")

    async def confirm_member(self, request: Request) -> dict[str, Any]:
        """The invitee signs up and joins: `memberJoinedTrello`."""
        member = self.world.confirm_member(request.path_params["member"])
        return {**member.public(), "confirmed": member.confirmed}

    async def deactivate_member(self, request: Request) -> dict[str, Any]:
        """An enterprise admin deactivates (`{"value": true}`) or reactivates the member."""
        body = await self.body(request)
        value, by = bool(body.get("value", True)), self.person(request, body, None)
        member = self.world.deactivate_in_enterprise(request.path_params["member"], value, by)
        return {"idMember": member.id, "deactivated": value}

    async def set_workspace_member(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        workspace_id, member = request.path_params["id"], request.path_params["member"]
        by = self.person(request, body, workspace_id)
        membership = self.world.set_workspace_member(workspace_id, member, body.get("type", "normal"), by=by)
        return {"idMember": membership.member_id, "memberType": membership.member_type}

    async def remove_workspace_member(self, request: Request) -> dict[str, Any]:
        workspace_id, member = request.path_params["id"], request.path_params["member"]
        self.world.remove_workspace_member(workspace_id, member, by=self.person(request, {}, workspace_id))
        return {"removed": member}

    async def set_board_member(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        board = self.world.board(request.path_params["id"])
        by = self.person(request, body, board.workspace_id)
        membership = self.world.set_board_member(
            board.id, request.path_params["member"], body.get("type", "normal"), by=by
        )
        return {"idMember": membership.member_id, "memberType": membership.member_type}

    async def remove_board_member(self, request: Request) -> dict[str, Any]:
        board = self.world.board(request.path_params["id"])
        self.world.remove_board_member(
            board.id, request.path_params["member"], by=self.person(request, {}, board.workspace_id)
        )
        return {"removed": request.path_params["member"]}

    async def set_signing(self, request: Request) -> dict[str, Any]:
        """Switch how deliveries are signed from now on: `{"encoding": "utf-8" | "binary"}`."""
        encoding = str((await self.body(request)).get("encoding", ""))
        if encoding not in SIGNATURE_ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(SIGNATURE_ENCODINGS)}")
        self.dispatcher.signature_encoding = encoding
        return {"encoding": encoding}

    async def get_faults(self, request: Request) -> dict[str, Any]:
        return self.faults.as_json()

    async def set_faults(self, request: Request) -> dict[str, Any]:
        self.faults.update(await self.body(request))
        return self.faults.as_json()

    async def set_limits(self, request: Request) -> dict[str, Any]:
        self.limiter.limits = Limits.from_json({**self.limiter.limits.__dict__, **await self.body(request)})
        self.limiter.reset()
        return dict(self.limiter.limits.__dict__)

    async def counters(self, request: Request) -> dict[str, Any]:
        return self.limiter.counters.as_json()

    async def reset_counters(self, request: Request) -> dict[str, Any]:
        self.limiter.reset()
        return self.limiter.counters.as_json()

    async def deliveries(self, request: Request) -> list[dict[str, Any]]:
        return [a.__dict__ for a in self.dispatcher.attempts]

    async def settle(self, request: Request) -> dict[str, Any]:
        timeout = float(request.query_params.get("timeout", 30))
        return {"settled": await self.dispatcher.settle(timeout)}
