"""`/1/boards/...`: a board's life (create, copy, close, reopen, move, delete) and who is on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import shapes
from emulator.calls import Call
from emulator.models import Board, TrelloError
from emulator.rest.memberships import listing, members_answer
from emulator.rest.organizations import member_type

if TYPE_CHECKING:
    from emulator.trello import RouteSpec, TrelloApi

WRITABLE = ("name", "closed", "idOrganization")


def board_json(api: TrelloApi, call: Call, board: Board) -> dict[str, Any]:
    record = shapes.board(board, call.params.get("fields"))
    if call.params.get("members") not in (None, "none"):
        record["members"] = [
            shapes.member(api.world.members[m], call.params.get("member_fields"), nested=True)
            for m in board.memberships
        ]
    if call.params.get("memberships") not in (None, "none"):
        wanted, nested = call.text("memberships") or "all", call.flag("memberships_member")
        record["memberships"] = listing(api, call, board.memberships.values(), wanted, with_member=nested)
    if call.flag("organization") and board.workspace_id in api.world.workspaces:
        record["organization"] = shapes.organization(api.world.workspaces[board.workspace_id])
    return record


async def get_board(api: TrelloApi, call: Call) -> dict[str, Any]:
    return board_json(api, call, api.board_of(call))


async def get_board_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    return shapes.value(shapes.board(api.board_of(call), "all"), call.path("field"))


async def memberships(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    board, wanted = api.board_of(call), call.text("filter", "all") or "all"
    return listing(api, call, board.memberships.values(), wanted, with_member=call.flag("member"))


async def members(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    board = api.board_of(call)
    return [
        shapes.member(api.world.members[m], call.params.get("fields"), nested=True) for m in board.memberships
    ]


async def set_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    board = api.board_of(call, admin=True)
    member = api.world.member(call.path("member"))
    api.world.set_board_member(board.id, member.id, member_type(call), by=call.member.id)
    return members_answer(api, board.id, board.memberships)


async def invite_by_email(api: TrelloApi, call: Call) -> dict[str, Any]:
    board = api.board_of(call, admin=True)
    api.world.invite_to_board(
        board.id, call.text("email") or "", call.text("fullName") or "", member_type(call), by=call.member.id
    )
    return members_answer(api, board.id, board.memberships)


async def remove_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    board = api.board_of(call, admin=True)
    member = api.world.member(call.path("member"))
    api.world.remove_board_member(board.id, member.id, by=call.member.id)
    return members_answer(api, board.id, board.memberships)


async def create_board(api: TrelloApi, call: Call) -> dict[str, Any]:
    """`POST /1/boards/`: a new board, or with `idBoardSource` a copy of one the caller may see."""
    name = call.text("name")
    if not name:
        raise TrelloError(400, "invalid value for name")
    workspace_id = call.text("idOrganization") or None
    if workspace_id is not None:
        api.require_visible_workspace(call, api.world.workspace(workspace_id).id)
    source = call.text("idBoardSource") or None
    if source is not None:
        api.require_visible_board(call, api.world.board(source))
    board = api.world.create_board(workspace_id, name, by=call.member.id, source=source)
    return shapes.board(board, "all")


async def update_board(api: TrelloApi, call: Call) -> dict[str, Any]:
    board = api.board_of(call, admin=True)
    change(api, call, board, {name: call.params[name] for name in WRITABLE if name in call.params})
    return shapes.board(board, "all")


async def update_board_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    board, field = api.board_of(call, admin=True), call.path("field")
    if field not in WRITABLE:
        raise TrelloError(404, "The requested resource was not found.")
    if "value" not in call.params:
        raise TrelloError(400, "invalid value for value")
    change(api, call, board, {field: call.params["value"]})
    return shapes.board(board, "all")


def change(api: TrelloApi, call: Call, board: Board, values: dict[str, Any]) -> None:
    by = call.member.id
    if "name" in values:
        api.world.rename_board(board.id, str(values["name"]), by)
    if "idOrganization" in values:
        target = str(values["idOrganization"] or "") or None
        if target is not None:
            api.require_workspace_admin(call, api.world.workspace(target).id)
        api.world.move_board(board.id, target, by)
    if "closed" in values:
        closed = str(values["closed"]).lower()
        if closed not in ("true", "false"):
            raise TrelloError(400, "invalid value for closed")
        api.world.set_board_closed(board.id, closed == "true", by)


async def delete_board(api: TrelloApi, call: Call) -> dict[str, Any]:
    """Trello deletes a board through the API whether or not it is closed (only its web UI asks that)."""
    board = api.board_of(call, admin=True)
    api.world.delete_board(board.id)
    return {"_value": None}


async def board_actions(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    board = api.board_of(call)
    try:
        limit = int(call.params.get("limit", 50))
    except ValueError:
        raise TrelloError(400, "invalid value for limit") from None
    if not 0 <= limit <= 1000:
        raise TrelloError(400, "invalid value for limit")
    kinds = set(str(call.params.get("filter", "all")).split(","))
    actions = api.world.actions
    on_board = [
        (i, a) for i, a in enumerate(actions) if a.body["data"].get("board", {}).get("id") == board.id
    ]
    since, before = call.text("since"), call.text("before")
    picked = [
        a.body
        for i, a in on_board
        if ("all" in kinds or a.body["type"] in kinds)
        and (since is None or _after(api, i, a.body, since))
        and (before is None or not _after(api, i, a.body, before, inclusive=True))
    ]
    return list(reversed(picked))[:limit]  # newest first, as Trello lists them


def _after(
    api: TrelloApi, index: int, action: dict[str, Any], marker: str, *, inclusive: bool = False
) -> bool:
    """Whether the action comes after `marker` (an action id, else a date); `inclusive` counts the
    marker itself as after (for `before`)."""
    position = next((i for i, a in enumerate(api.world.actions) if a.id == marker), None)
    if position is not None:
        return index >= position if inclusive else index > position
    return str(action["date"]) >= marker if inclusive else str(action["date"]) > marker


ROUTES: list[RouteSpec] = [
    ("POST", "/1/boards", create_board),
    ("GET", "/1/boards/{id}", get_board),
    ("PUT", "/1/boards/{id}", update_board),
    ("DELETE", "/1/boards/{id}", delete_board),
    ("GET", "/1/boards/{id}/memberships", memberships),
    ("GET", "/1/boards/{id}/members", members),
    ("PUT", "/1/boards/{id}/members", invite_by_email),
    ("PUT", "/1/boards/{id}/members/{member}", set_member),
    ("DELETE", "/1/boards/{id}/members/{member}", remove_member),
    ("GET", "/1/boards/{id}/actions", board_actions),
    ("GET", "/1/boards/{id}/{field}", get_board_field),
    ("PUT", "/1/boards/{id}/{field}", update_board_field),
]
