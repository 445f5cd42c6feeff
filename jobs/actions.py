"""Trello actions: which ones touch membership, and what a delivery says.

Part of the job contract: the receiver classifies deliveries with it, the workers read them with it.
Field names differ between action types, so everything here reads defensively.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

BOARD_MEMBER_ACTIONS = frozenset(
    {
        "addMemberToBoard",
        "removeMemberFromBoard",
        "makeAdminOfBoard",
        "makeNormalMemberOfBoard",
        "makeObserverOfBoard",
        "removeAdminFromBoard",
        "unconfirmedBoardInvitation",
        "deactivatedMemberInBoard",
        "reactivatedMemberInBoard",
    }
)
ORGANIZATION_MEMBER_ACTIONS = frozenset(
    {
        "addMemberToOrganization",
        "removeMemberFromOrganization",
        "makeAdminOfOrganization",
        "makeNormalMemberOfOrganization",
        "removeAdminFromOrganization",
        "unconfirmedOrganizationInvitation",
        "deactivatedMemberInOrganization",
        "reactivatedMemberInOrganization",
    }
)
# A member's own changes, and an enterprise deactivating or reactivating them (TRELLO.md is silent on these
# two; their names are those public Trello clients list among action types).
MEMBER_ACTIONS = frozenset(
    {"updateMember", "memberJoinedTrello", "deactivatedMemberInEnterprise", "reactivatedMemberInEnterprise"}
)
# A board's life as it changes who may see it: created or copied into a workspace, moved into or out of
# one, closed or reopened. Trello has no `deleteBoard` action: a deleted board is found by the resync.
BOARD_LIFECYCLE_ACTIONS = frozenset(
    {"createBoard", "copyBoard", "addToOrganizationBoard", "removeFromOrganizationBoard", "updateBoard"}
)
MEMBERSHIP_ACTIONS = (
    BOARD_MEMBER_ACTIONS | ORGANIZATION_MEMBER_ACTIONS | MEMBER_ACTIONS | BOARD_LIFECYCLE_ACTIONS
)
# Actions after which the workspace is looked at again: its members and roles, or its list of boards.
WORKSPACE_SCOPED = ORGANIZATION_MEMBER_ACTIONS | MEMBER_ACTIONS | BOARD_LIFECYCLE_ACTIONS

# A Trello object id: 24 hex digits, the first 8 its creation time in seconds.
TRELLO_ID = re.compile(r"[0-9a-fA-F]{24}")


class InvalidDelivery(ValueError):
    """The body is not a Trello webhook delivery we can act on."""


class Delivery(NamedTuple):
    """The parts of a webhook delivery that decide what to do with it. (A NamedTuple: the receiver
    builds one for every delivery, and it is built in half the time of a frozen dataclass.)"""

    action_id: str
    type: str
    model_id: str | None
    body: dict[str, Any]

    @property
    def date(self) -> datetime | None:
        """When Trello says the action happened (parsed on demand: the receiver never needs it)."""
        return parse_date(self.action.get("date"))

    @property
    def is_membership(self) -> bool:
        return self.type in MEMBERSHIP_ACTIONS

    @property
    def action(self) -> dict[str, Any]:
        action: dict[str, Any] = self.body["action"]
        return action


def parse_delivery(body: object) -> Delivery:
    """Check the shape of a decoded delivery body and pick out what matters."""
    if not isinstance(body, dict):
        raise InvalidDelivery("body is not a JSON object")
    action = body.get("action")
    if not isinstance(action, dict):
        raise InvalidDelivery("no 'action' object")
    action_id, action_type = action.get("id"), action.get("type")
    if not isinstance(action_id, str) or not TRELLO_ID.fullmatch(action_id):
        raise InvalidDelivery("'action.id' is not a Trello id")
    if not isinstance(action_type, str) or not action_type or len(action_type) > 64:
        raise InvalidDelivery("'action.type' is missing")
    model = body.get("model")
    model_id = model.get("id") if isinstance(model, dict) else None
    return Delivery(
        action_id=action_id.lower(),
        type=action_type,
        model_id=model_id if isinstance(model_id, str) and len(model_id) <= 64 else None,
        body=body,
    )


def parse_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def board_of(action: dict[str, Any]) -> str | None:
    """The board an action is about, if any (`data.board.id`)."""
    board = action.get("data", {}).get("board")
    board_id = board.get("id") if isinstance(board, dict) else None
    return board_id if isinstance(board_id, str) and TRELLO_ID.fullmatch(board_id) else None


def member_of(action: dict[str, Any]) -> str | None:
    """The member an action is about: the field differs from one action type to another."""
    data = action.get("data", {})
    for candidate in (
        data.get("idMember"),
        data.get("idMemberAdded"),
        (data.get("member") or {}).get("id") if isinstance(data.get("member"), dict) else None,
        (action.get("member") or {}).get("id") if isinstance(action.get("member"), dict) else None,
    ):
        if isinstance(candidate, str) and TRELLO_ID.fullmatch(candidate):
            return candidate
    return None


def organization_of(action: dict[str, Any]) -> str | None:
    organization = action.get("data", {}).get("organization")
    org_id = organization.get("id") if isinstance(organization, dict) else None
    return org_id if isinstance(org_id, str) and TRELLO_ID.fullmatch(org_id) else None
