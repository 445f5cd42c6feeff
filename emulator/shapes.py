"""Objects as Trello's REST API shapes them: each type's default field set, and `fields=` to choose.

The default sets are the ones Trello's REST reference lists and public clients read (a board's `url`, an
organization's `displayName`, a webhook's `consecutiveFailures`); nested members carry Trello's default
member fields for nested resources (`fullName`, `username`) beside their id. Values that the emulator
does not model (a description, preferences, label names) are there with Trello's empty values, so that
a client reading them finds the key.
"""

from __future__ import annotations

from typing import Any

from emulator.models import (
    Board,
    BoardMembership,
    Member,
    TrelloError,
    Webhook,
    Workspace,
    WorkspaceMembership,
)

TRELLO = "https://trello.com"

BOARD_DEFAULT = (
    "id", "name", "desc", "descData", "closed", "idOrganization", "pinned", "url", "shortUrl", "prefs",
    "labelNames",
)  # fmt: skip
ORGANIZATION_DEFAULT = (
    "id", "name", "displayName", "desc", "descData", "url", "website", "logoHash", "products", "powerUps",
)  # fmt: skip
NESTED_MEMBER_DEFAULT = ("id", "fullName", "username")
WEBHOOK_DEFAULT = (
    "id", "description", "idModel", "callbackURL", "active", "consecutiveFailures",
    "firstConsecutiveFailDate",
)  # fmt: skip

BOARD_PREFS = {
    "permissionLevel": "org", "hideVotes": False, "voting": "disabled", "comments": "members",
    "invitations": "members", "selfJoin": True, "cardCovers": True, "isTemplate": False,
    "cardAging": "regular", "calendarFeedEnabled": False, "background": "blue", "backgroundImage": None,
    "backgroundTile": False, "backgroundBrightness": "dark", "backgroundColor": "#0079BF",
    "canBePublic": True, "canBeEnterprise": True, "canBeOrg": True, "canBePrivate": True, "canInvite": True,
}  # fmt: skip
LABEL_NAMES = {colour: "" for colour in ("green", "yellow", "orange", "red", "purple", "blue")}


def choose(record: dict[str, Any], fields: object, default: tuple[str, ...]) -> dict[str, Any]:
    """`record` cut to the fields asked for (`fields=a,b`, `all`), or to the type's default set. The id is
    always there, as in Trello's answers."""
    if fields == "all":
        return record
    names = default if not isinstance(fields, str) or not fields else tuple(fields.split(","))
    return {name: record[name] for name in ("id", *names) if name in record}


def board(board: Board, fields: object = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": board.id,
        "name": board.name,
        "desc": "",
        "descData": None,
        "closed": board.closed,
        "idOrganization": board.workspace_id,
        "idEnterprise": None,
        "pinned": False,
        "shortLink": board.short_link,
        "url": f"{TRELLO}/b/{board.short_link}/{slug(board.name)}",
        "shortUrl": f"{TRELLO}/b/{board.short_link}",
        "prefs": dict(BOARD_PREFS),
        "labelNames": dict(LABEL_NAMES),
        "dateLastActivity": None,
        "idMemberCreator": board.creator_id,
    }
    return choose(record, fields, BOARD_DEFAULT)


def organization(workspace: Workspace, fields: object = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": workspace.id,
        "name": workspace.name,
        "displayName": workspace.display_name,
        "desc": "",
        "descData": {"emoji": {}},
        "url": f"{TRELLO}/w/{workspace.name}",
        "website": None,
        "logoHash": None,
        "logoUrl": None,
        "products": [],
        "powerUps": [],
        "idBoards": [],
        "premiumFeatures": premium_features(workspace),
    }
    return choose(record, fields, ORGANIZATION_DEFAULT)


def premium_features(workspace: Workspace) -> list[str]:
    return ["observers", "deactivated"] if workspace.plan in ("premium", "enterprise") else []


def member(
    member: Member, fields: object = None, *, nested: bool = False, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A member as someone else sees it (never their email); `extra`: what only the member sees of
    themselves, or what the caller knows (their boards and workspaces)."""
    record: dict[str, Any] = {
        "id": member.id,
        "aaId": member.aa_id,
        "activityBlocked": False,
        "avatarHash": None,
        "avatarUrl": None,
        "bio": "",
        "bioData": None,
        "confirmed": member.confirmed,
        "fullName": member.full_name,
        "idEnterprise": None,
        "idEnterprisesDeactivated": [],
        "idMemberReferrer": None,
        "idPremOrgsAdmin": [],
        "initials": member.initials,
        "memberType": "normal" if member.confirmed else "ghost",
        "nonPublic": {},
        "nonPublicAvailable": True,
        "products": [],
        "url": f"{TRELLO}/{member.username}",
        "username": member.username,
        "status": "disconnected",
        **(extra or {}),
    }
    # A member on its own comes with all its fields (Trello's default for `/1/members/{id}`); nested in
    # another object, with the nested default.
    if fields is None and not nested:
        fields = "all"
    return choose(record, fields, NESTED_MEMBER_DEFAULT)


def action_member(member: Member) -> dict[str, Any]:
    """A member as an action's `memberCreator` and `member` carry it."""
    record = {
        "id": member.id,
        "activityBlocked": False,
        "avatarHash": None,
        "avatarUrl": None,
        "fullName": member.full_name,
        "idMemberReferrer": None,
        "initials": member.initials,
        "nonPublic": {},
        "nonPublicAvailable": True,
        "username": member.username,
    }
    return record


def webhook(hook: Webhook, fields: object = None) -> dict[str, Any]:
    return choose(hook.as_json(), fields, WEBHOOK_DEFAULT)


def slug(name: str) -> str:
    """Trello's readable tail of a board URL: lowercase words joined by dashes."""
    words = "".join(c.lower() if c.isalnum() else " " for c in name).split()
    return "-".join(words) or "board"


def membership(
    row: BoardMembership | WorkspaceMembership,
    person: Member,
    *,
    with_member: bool = False,
    member_fields: object = None,
) -> dict[str, Any]:
    """A board's or workspace's membership; `member=true` nests the member with `member_fields`."""
    record: dict[str, Any] = {
        "id": row.id,
        "idMember": person.id,
        "memberType": row.member_type,
        "unconfirmed": row.unconfirmed,
        "deactivated": row.deactivated,
    }
    if with_member:
        record["member"] = choose(member(person, "all"), member_fields, NESTED_MEMBER_DEFAULT)
    return record


def value(record: dict[str, Any], field: str) -> dict[str, Any]:
    """Trello's answer to `GET /1/{type}/{id}/{field}`: the one value, as `_value`."""
    if field not in record:
        raise TrelloError(404, "The requested resource was not found.")
    return {"_value": record[field]}
