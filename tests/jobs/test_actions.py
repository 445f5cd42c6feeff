"""Which deliveries touch membership, and what they name: one table, checked against real deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobs.actions import (
    MEMBERSHIP_ACTIONS,
    WORKSPACE_SCOPED,
    board_of,
    member_of,
    organization_of,
    parse_delivery,
)

PAYLOADS = Path(__file__).parents[1] / "fixtures" / "payloads"

# Every action type TRELLO.md lists that can change who may see a board (its "Action shapes" section).
CHANGES_WHO_SEES_A_BOARD = {
    "addMemberToBoard", "removeMemberFromBoard", "makeAdminOfBoard", "makeNormalMemberOfBoard",
    "makeObserverOfBoard", "removeAdminFromBoard", "unconfirmedBoardInvitation",
    "addMemberToOrganization", "removeMemberFromOrganization", "makeAdminOfOrganization",
    "makeNormalMemberOfOrganization", "removeAdminFromOrganization", "unconfirmedOrganizationInvitation",
    "updateMember", "memberJoinedTrello",
    "deactivatedMemberInBoard", "reactivatedMemberInBoard", "deactivatedMemberInOrganization",
    "reactivatedMemberInOrganization", "deactivatedMemberInEnterprise", "reactivatedMemberInEnterprise",
    "createBoard", "copyBoard", "addToOrganizationBoard", "removeFromOrganizationBoard", "updateBoard",
}  # fmt: skip


def real(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return payload


def test_every_action_that_changes_who_sees_a_board_is_followed() -> None:
    assert CHANGES_WHO_SEES_A_BOARD <= MEMBERSHIP_ACTIONS


def test_board_life_cycle_and_member_actions_look_at_the_workspace_again() -> None:
    lifecycle = {
        "createBoard",
        "copyBoard",
        "addToOrganizationBoard",
        "removeFromOrganizationBoard",
        "updateBoard",
    }
    assert lifecycle | {"memberJoinedTrello", "removeMemberFromOrganization"} <= WORKSPACE_SCOPED


def test_trello_has_no_delete_board_action_so_none_is_expected() -> None:
    assert "deleteBoard" not in MEMBERSHIP_ACTIONS


@pytest.mark.parametrize(
    ("name", "kind", "member_field"),
    [
        ("zulip_adding_member_to_board.json", "addMemberToBoard", "idMemberAdded"),
        ("zulip_removing_member_from_board.json", "removeMemberFromBoard", "idMember"),
    ],
)
def test_a_real_delivery_is_classified_and_names_its_board_and_member(
    name: str, kind: str, member_field: str
) -> None:
    payload = real(name)
    delivery = parse_delivery(payload)
    assert (delivery.type, delivery.is_membership) == (kind, True)
    assert board_of(delivery.action) == payload["model"]["id"]
    assert member_of(delivery.action) == payload["action"]["data"][member_field]
    assert organization_of(delivery.action) is None  # a board outside any workspace: its model says so
    assert delivery.date is not None
