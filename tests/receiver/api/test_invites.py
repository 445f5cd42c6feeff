"""Seed 004, organization invites: every rule and status code, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from membership.models import InviteBoardAccess, MemberChange
from tests.fixtures.store import Person, World

INVITES = "/organizations/me/invites"
ACCEPT = "/organizations/invites/accept"


async def invite(api: httpx.AsyncClient, by: Person, **body: Any) -> httpx.Response:
    return await api.post(INVITES, json={"role": "member", **body}, headers=by.headers)


async def new_user(world: World, name: str) -> Person:
    async with world.database.transaction() as session:
        return await world.person(session, name, None)


# Creating


async def test_admin_creates_an_invite_with_a_24_character_url_safe_token(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await invite(api, world.adam, email="Newbie@Example.COM", can_read_all_boards=True)
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "newbie@example.com"
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", body["token"])
    assert body["invited_by_user_id"] == world.adam.user.id
    assert (body["accepted_by_user_id"], body["accepted_at"]) == (None, None)
    assert body["organization_id"] == world.organization_id
    assert body["can_read_all_boards"] is True


async def test_tokens_differ_from_invite_to_invite(api: httpx.AsyncClient, world: World) -> None:
    tokens = {(await invite(api, world.adam, email=f"n{i}@example.com")).json()["token"] for i in range(5)}
    assert len(tokens) == 5


async def test_inviting_an_existing_member_is_409_whatever_the_case(
    api: httpx.AsyncClient, world: World
) -> None:
    assert (await invite(api, world.adam, email="MIA@example.com")).status_code == 409


@pytest.mark.parametrize(
    "email", ["", "   ", "not-an-email", "a@b", "two@@example.com", "sp ace@example.com"]
)
async def test_empty_or_invalid_email_is_422(api: httpx.AsyncClient, world: World, email: str) -> None:
    assert (await invite(api, world.adam, email=email)).status_code == 422


async def test_invite_for_another_organizations_board_is_422(api: httpx.AsyncClient, world: World) -> None:
    response = await invite(
        api,
        world.adam,
        email="n@example.com",
        board_access=[{"board_id": world.other_board, "can_read": True}],
    )
    assert response.status_code == 422


async def test_member_cannot_invite(api: httpx.AsyncClient, world: World) -> None:
    assert (await invite(api, world.mia, email="n@example.com")).status_code == 403


async def test_admin_cannot_invite_an_owner(api: httpx.AsyncClient, world: World) -> None:
    assert (await invite(api, world.adam, email="n@example.com", role="owner")).status_code == 403


async def test_owner_invites_an_owner(api: httpx.AsyncClient, world: World) -> None:
    assert (await invite(api, world.olive, email="n@example.com", role="owner")).status_code == 201


@pytest.mark.parametrize(
    "body", [{"email": 5}, {"email": "n@example.com", "role": "king"}, {"email": "n@e.com", "x": 1}]
)
async def test_invite_with_wrong_fields_is_422(
    api: httpx.AsyncClient, world: World, body: dict[str, Any]
) -> None:
    assert (await api.post(INVITES, json=body, headers=world.adam.headers)).status_code == 422


# Listing


async def test_pending_invites_are_listed_newest_first(api: httpx.AsyncClient, world: World) -> None:
    for i in range(3):
        await invite(api, world.adam, email=f"n{i}@example.com")
    body = (await api.get(INVITES, headers=world.adam.headers)).json()
    assert [i["email"] for i in body["data"]] == ["n2@example.com", "n1@example.com", "n0@example.com"]
    assert body["total"] == 3


async def test_accepted_invites_are_not_listed(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    body = (await api.get(INVITES, headers=world.adam.headers)).json()
    assert body["total"] == 0


async def test_invite_pages_follow_limit_and_offset(api: httpx.AsyncClient, world: World) -> None:
    for i in range(5):
        await invite(api, world.adam, email=f"n{i}@example.com")
    body = (await api.get(INVITES, params={"limit": 2, "offset": 1}, headers=world.adam.headers)).json()
    assert [i["email"] for i in body["data"]] == ["n3@example.com", "n2@example.com"]
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)


async def test_member_cannot_list_invites(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(INVITES, headers=world.mia.headers)).status_code == 403


async def test_another_organizations_invites_are_not_listed(api: httpx.AsyncClient, world: World) -> None:
    await invite(api, world.xavier, email="n@example.com")
    assert (await api.get(INVITES, headers=world.olive.headers)).json()["total"] == 0


# Revoking


async def test_revoking_returns_the_invite_and_deletes_its_board_access(
    api: httpx.AsyncClient, world: World
) -> None:
    grant = [{"board_id": world.boards[1], "can_read": True}]
    created = (await invite(api, world.adam, email="nora@example.com", board_access=grant)).json()

    response = await api.delete(f"{INVITES}/{created['id']}", headers=world.adam.headers)

    assert response.status_code == 200
    assert response.json()["token"] == created["token"]
    async with world.database.transaction() as session:
        left = await session.scalars(
            select(InviteBoardAccess).where(InviteBoardAccess.invite_id == created["id"])
        )
        assert list(left) == []
    accept = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    assert accept.status_code == 404


async def test_revoking_an_unknown_invite_is_404(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.delete(f"{INVITES}/424242", headers=world.adam.headers)).status_code == 404


async def test_revoking_another_organizations_invite_is_404(api: httpx.AsyncClient, world: World) -> None:
    theirs = (await invite(api, world.xavier, email="n@example.com")).json()
    assert (await api.delete(f"{INVITES}/{theirs['id']}", headers=world.olive.headers)).status_code == 404


async def test_member_cannot_revoke(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="n@example.com")).json()
    assert (await api.delete(f"{INVITES}/{created['id']}", headers=world.mia.headers)).status_code == 403


# Accepting


async def test_accepting_creates_the_membership_and_marks_the_invite(
    api: httpx.AsyncClient, world: World
) -> None:
    grant = [{"board_id": world.boards[2], "can_read": True, "can_write": True}]
    created = (
        await invite(api, world.adam, email="NORA@example.com", role="admin", board_access=grant)
    ).json()

    response = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)

    assert response.status_code == 200
    membership = response.json()
    assert (membership["user_id"], membership["role"]) == (world.nora.user.id, "admin")
    assert membership["organization_id"] == world.organization_id
    assert membership["board_access"] == [{"board_id": world.boards[2], "can_read": True, "can_write": True}]
    own = await api.get("/organizations/me/members", headers=world.nora.headers)
    assert own.status_code == 200  # the organization became nora's active one
    async with world.database.transaction() as session:
        from membership.models import Invite

        stored = await session.get(Invite, created["id"])
    assert stored is not None
    assert stored.accepted_by_user_id == world.nora.user.id
    assert stored.accepted_at is not None


async def test_email_matching_ignores_case(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    async with world.database.transaction() as session:
        from membership.models import User

        user = await session.get(User, world.nora.user.id)
        assert user is not None
        user.email = "Nora@Example.com"
    response = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    assert response.status_code == 200


async def test_invite_is_accepted_once(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    first = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    second = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    assert (first.status_code, second.status_code) == (200, 404)


async def test_someone_else_cannot_accept_the_invite(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    stranger = await new_user(world, "sam")
    assert (
        await api.post(ACCEPT, json={"token": created["token"]}, headers=stranger.headers)
    ).status_code == 403


async def test_unknown_token_is_404(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(ACCEPT, json={"token": "A" * 24}, headers=world.nora.headers)
    assert response.status_code == 404


async def test_accepting_needs_authentication(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    assert (await api.post(ACCEPT, json={"token": created["token"]})).status_code == 401


async def test_accepting_merges_into_an_existing_membership(api: httpx.AsyncClient, world: World) -> None:
    # mia is a member who reads board 0; an invite for her email made before she joined grants more.
    async with world.database.transaction() as session:
        from membership.invites import create_invite
        from membership.members import BoardGrant
        from tests.fixtures.store import SYSTEM

        pending = await create_invite(
            session, SYSTEM, world.organization_id, email="other@example.com", role="admin",
            can_write_all_boards=True, board_access=[BoardGrant(world.boards[0], can_write=True),
            BoardGrant(world.boards[1], can_read=True)], cause="test",
        )  # fmt: skip
        pending.email = "mia@example.com"
        token = pending.token

    response = await api.post(ACCEPT, json={"token": token}, headers=world.mia.headers)

    assert response.status_code == 200
    merged = response.json()
    assert merged["id"] == world.mia.member_id
    assert (merged["role"], merged["can_write_all_boards"]) == ("admin", True)
    assert merged["board_access"] == [
        {"board_id": world.boards[0], "can_read": True, "can_write": True},
        {"board_id": world.boards[1], "can_read": True, "can_write": False},
    ]


async def test_accepting_hands_an_onboarding_to_the_workers(api: httpx.AsyncClient, world: World) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    async with world.database.transaction() as session:
        changes = list(await session.scalars(select(MemberChange).where(MemberChange.kind == "onboard")))
    assert [(c.user_id, c.organization_id) for c in changes] == [(world.nora.user.id, world.organization_id)]
