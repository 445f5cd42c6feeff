"""`/1/organizations/...`: a workspace, its members and memberships, its boards, and changing who is in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import shapes
from emulator.calls import Call
from emulator.models import TrelloError, Workspace
from emulator.rest.memberships import keep, listing, members_answer

if TYPE_CHECKING:
    from emulator.trello import RouteSpec, TrelloApi


def organization_json(api: TrelloApi, workspace: Workspace, fields: object) -> dict[str, Any]:
    record = shapes.organization(workspace, "all")
    record["idBoards"] = [b.id for b in api.world.workspace_boards(workspace.id)]
    return shapes.choose(record, fields, shapes.ORGANIZATION_DEFAULT)


async def get_organization(api: TrelloApi, call: Call) -> dict[str, Any]:
    workspace = api.workspace_of(call)
    record = organization_json(api, workspace, call.params.get("fields"))
    if call.params.get("memberships") not in (None, "none"):
        record["memberships"] = rows(api, call, workspace, call.text("memberships") or "all")
    if call.params.get("members") not in (None, "none"):
        record["members"] = [shapes.member(api.world.members[m], nested=True) for m in workspace.memberships]
    if call.params.get("boards") not in (None, "none"):
        record["boards"] = boards(
            api, workspace, call.text("boards") or "all", call.params.get("board_fields")
        )
    return record


async def get_organization_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    return shapes.value(organization_json(api, api.workspace_of(call), "all"), call.path("field"))


def rows(api: TrelloApi, call: Call, workspace: Workspace, wanted: str) -> list[dict[str, Any]]:
    memberships = workspace.memberships.values()
    return listing(api, call, memberships, wanted, with_member=call.flag("member"))


async def memberships(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    return rows(api, call, api.workspace_of(call), call.text("filter", "all") or "all")


async def members(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    workspace = api.workspace_of(call)
    wanted = call.text("filter", "normal") or "normal"
    return [
        shapes.member(api.world.members[m.member_id], call.params.get("fields"), nested=True)
        for m in workspace.memberships.values()
        if wanted in ("all", "normal", "members") or keep(m, wanted, call.member.id)
    ]


def boards(api: TrelloApi, workspace: Workspace, wanted: str, fields: object) -> list[dict[str, Any]]:
    if wanted not in ("all", "open", "closed", "members", "organization", "public", "private"):
        raise TrelloError(400, "invalid value for filter")
    listed = api.world.workspace_boards(workspace.id)
    if wanted in ("open", "closed"):
        listed = [b for b in listed if b.closed == (wanted == "closed")]
    return [shapes.board(b, fields) for b in listed]


async def organization_boards(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    workspace = api.workspace_of(call)
    return boards(api, workspace, call.text("filter", "all") or "all", call.params.get("fields"))


async def invite_by_email(api: TrelloApi, call: Call) -> dict[str, Any]:
    workspace = api.workspace_of(call, admin=True)
    member = api.world.invite_to_workspace(
        workspace.id,
        call.text("email") or "",
        call.text("fullName") or "",
        member_type(call),
        by=call.member.id,
    )
    return {**members_answer(api, workspace.id, workspace.memberships), "idMember": member.id}


def member_type(call: Call, default: str = "normal") -> str:
    value = call.text("type", default) or default
    if value not in ("admin", "normal", "observer"):
        raise TrelloError(400, "invalid value for type")
    return value


async def set_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    workspace = api.workspace_of(call, admin=True)
    member = api.world.member(call.path("member"))
    kind = member_type(call)
    if kind == "observer":
        raise TrelloError(400, "invalid value for type")
    api.world.set_workspace_member(workspace.id, member.id, kind, by=call.member.id)
    return members_answer(api, workspace.id, workspace.memberships)


async def remove_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    return _remove(api, call, from_boards=False)


async def remove_member_everywhere(api: TrelloApi, call: Call) -> dict[str, Any]:
    return _remove(api, call, from_boards=True)


def _remove(api: TrelloApi, call: Call, *, from_boards: bool) -> dict[str, Any]:
    workspace = api.workspace_of(call, admin=True)
    member = api.world.member(call.path("member"))
    api.world.remove_workspace_member(workspace.id, member.id, by=call.member.id, from_boards=from_boards)
    return members_answer(api, workspace.id, workspace.memberships)


async def deactivate(api: TrelloApi, call: Call) -> dict[str, Any]:
    workspace = api.workspace_of(call, admin=True)
    member = api.world.member(call.path("member"))
    value = call.flag("value") if "value" in call.params else None
    if value is None:
        raise TrelloError(400, "invalid value for value")
    api.world.set_deactivated(workspace.id, member.id, value, by=call.member.id)
    return members_answer(api, workspace.id, workspace.memberships)


ROUTES: list[RouteSpec] = [
    ("GET", "/1/organizations/{id}", get_organization),
    ("GET", "/1/organizations/{id}/memberships", memberships),
    ("GET", "/1/organizations/{id}/members", members),
    ("PUT", "/1/organizations/{id}/members", invite_by_email),
    ("GET", "/1/organizations/{id}/boards", organization_boards),
    ("PUT", "/1/organizations/{id}/members/{member}", set_member),
    ("DELETE", "/1/organizations/{id}/members/{member}", remove_member),
    ("DELETE", "/1/organizations/{id}/members/{member}/all", remove_member_everywhere),
    ("PUT", "/1/organizations/{id}/members/{member}/deactivated", deactivate),
    ("GET", "/1/organizations/{id}/{field}", get_organization_field),
]
