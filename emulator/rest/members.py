"""`/1/members/...` and `/1/tokens/{token}`: who a token is, and what a member belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator import shapes
from emulator.calls import Call
from emulator.models import Member, TrelloError

if TYPE_CHECKING:
    from emulator.trello import RouteSpec, TrelloApi


def member_json(api: TrelloApi, call: Call, member: Member, fields: object) -> dict[str, Any]:
    """A member as the caller sees them: their own email and account id only when it is themselves."""
    extra: dict[str, Any] = {
        "idBoards": [b.id for b in api.world.boards_of(member.id)],
        "idOrganizations": [w.id for w in api.world.workspaces_of(member.id)],
    }
    if member.id == call.member.id:
        extra |= {"email": member.email, "aaId": member.aa_id}
    else:
        extra |= {"aaId": member.aa_id if is_enterprise_admin(api, call.member) else None}
    return shapes.member(member, fields, extra=extra)


def is_enterprise_admin(api: TrelloApi, caller: Member) -> bool:
    """Whether `caller` administers an enterprise. Trello documents no rule for who sees another member's
    Atlassian account id; the likely one is assumed here: an enterprise's admins do (modelled as the
    admins of a workspace on the enterprise plan), and nobody else."""
    return any(
        w.plan == "enterprise" and w.memberships[caller.id].member_type == "admin"
        for w in api.world.workspaces_of(caller.id)
    )


def the_member(api: TrelloApi, call: Call) -> Member:
    name = call.path("id")
    return call.member if name == "me" else api.world.member(name)


async def get_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    return member_json(api, call, the_member(api, call), call.params.get("fields"))


async def get_member_field(api: TrelloApi, call: Call) -> dict[str, Any]:
    return shapes.value(member_json(api, call, the_member(api, call), "all"), call.path("field"))


async def member_boards(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    """The boards a member is on that the caller may see too."""
    member, wanted = the_member(api, call), call.text("filter", "all") or "all"
    visible = []
    for board in api.world.boards_of(member.id):
        try:
            api.require_visible_board(call, board)
        except TrelloError:  # a board the caller may not see is not listed
            continue
        if wanted == "all" or (wanted == "open") != board.closed:
            visible.append(shapes.board(board, call.params.get("fields")))
    return visible


async def member_organizations(api: TrelloApi, call: Call) -> list[dict[str, Any]]:
    member = the_member(api, call)
    return [
        shapes.organization(w, call.params.get("fields"))
        for w in api.world.workspaces_of(member.id)
        if call.member.id in w.memberships
    ]


def token_json(api: TrelloApi, call: Call) -> dict[str, Any]:
    grant = api.world.tokens[call.token]
    return {
        "id": grant["id"],
        "identifier": grant.get("identifier", "Trellis"),
        "idMember": grant["member_id"],
        "dateCreated": grant["date_created"],
        "dateExpires": grant.get("date_expires"),
        "permissions": [
            {"idModel": "*", "modelType": "Board", "read": True, "write": True},
            {"idModel": "*", "modelType": "Organization", "read": True, "write": True},
        ],
    }


async def get_token(api: TrelloApi, call: Call) -> dict[str, Any]:
    api.require_own_token(call)
    return shapes.choose(token_json(api, call), call.params.get("fields"), tuple(token_json(api, call)))


async def get_token_member(api: TrelloApi, call: Call) -> dict[str, Any]:
    api.require_own_token(call)
    return member_json(api, call, call.member, call.params.get("fields"))


ROUTES: list[RouteSpec] = [
    ("GET", "/1/members/{id}", get_member),
    ("GET", "/1/members/{id}/boards", member_boards),
    ("GET", "/1/members/{id}/organizations", member_organizations),
    ("GET", "/1/members/{id}/{field}", get_member_field),
    ("GET", "/1/tokens/{token}", get_token),
    ("GET", "/1/tokens/{token}/member", get_token_member),
]
