"""Seed 003, organization members: every rule and status code, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from membership.models import AuditEntry, BoardAccess, MemberChange, User
from tests.fixtures.store import World
from tests.receiver.api.conftest import MEMBERS, member

# Listing


async def test_admin_lists_every_member_with_user_and_board_access(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.get(MEMBERS, headers=world.adam.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 20, 0)
    by_email = {m["user"]["email"]: m for m in body["data"]}
    assert set(by_email) == {"olive@example.com", "adam@example.com", "mia@example.com"}
    mia = by_email["mia@example.com"]
    assert mia["role"] == "member"
    assert mia["organization_id"] == world.organization_id
    assert mia["board_access"] == [{"board_id": world.boards[0], "can_read": True, "can_write": False}]
    assert set(mia["user"]) == {"id", "email", "name", "preferred_name"}
    assert datetime.fromisoformat(mia["created_at"]).utcoffset() == timedelta(0)


async def test_member_listing_shows_only_their_own_membership(api: httpx.AsyncClient, world: World) -> None:
    body = (await api.get(MEMBERS, headers=world.mia.headers)).json()
    assert body["total"] == 1
    assert [m["id"] for m in body["data"]] == [world.mia.member_id]


async def test_pages_follow_limit_and_offset(api: httpx.AsyncClient, world: World) -> None:
    first = (await api.get(MEMBERS, params={"limit": 2}, headers=world.olive.headers)).json()
    second = (await api.get(MEMBERS, params={"limit": 2, "offset": 2}, headers=world.olive.headers)).json()
    assert [len(first["data"]), len(second["data"])] == [2, 1]
    assert {m["id"] for m in first["data"]}.isdisjoint(m["id"] for m in second["data"])
    assert (second["total"], second["limit"], second["offset"]) == (3, 2, 2)


async def test_offset_past_the_end_gives_an_empty_page_with_the_total(
    api: httpx.AsyncClient, world: World
) -> None:
    body = (await api.get(MEMBERS, params={"offset": 50}, headers=world.olive.headers)).json()
    assert (body["data"], body["total"]) == ([], 3)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}])
async def test_paging_outside_its_bounds_is_422(
    api: httpx.AsyncClient, world: World, params: dict[str, object]
) -> None:
    response = await api.get(MEMBERS, params=params, headers=world.olive.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "unprocessable"


# Viewing one


async def test_member_views_their_own_membership(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(member(world, "mia"), headers=world.mia.headers)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "mia@example.com"


async def test_member_viewing_someone_else_is_403(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(member(world, "adam"), headers=world.mia.headers)).status_code == 403


async def test_unknown_member_is_404(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(f"{MEMBERS}/999999", headers=world.olive.headers)).status_code == 404


async def test_another_organizations_member_is_404_never_a_leak(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(member(world, "xavier"), headers=world.olive.headers)
    assert response.status_code == 404
    assert "xavier" not in response.text


async def test_id_past_64_bits_is_404_not_a_crash(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(f"{MEMBERS}/{2**70}", headers=world.olive.headers)).status_code == 404


# Changing roles


async def test_admin_promotes_a_member_to_admin_and_it_is_audited(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.patch(member(world, "mia"), json={"role": "admin"}, headers=world.adam.headers)
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    async with world.database.transaction() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "role_changed"))
    assert entry is not None
    assert (entry.actor, entry.before["role"], entry.after["role"]) == (  # type: ignore[index]
        f"user:{world.adam.user.id}",
        "member",
        "admin",
    )
    assert entry.cause.startswith("api:PATCH")


async def test_member_cannot_change_roles(api: httpx.AsyncClient, world: World) -> None:
    response = await api.patch(member(world, "mia"), json={"role": "admin"}, headers=world.mia.headers)
    assert response.status_code == 403


async def test_admin_cannot_make_anyone_owner(api: httpx.AsyncClient, world: World) -> None:
    response = await api.patch(member(world, "mia"), json={"role": "owner"}, headers=world.adam.headers)
    assert response.status_code == 403


async def test_admin_cannot_demote_an_owner(api: httpx.AsyncClient, world: World) -> None:
    response = await api.patch(member(world, "olive"), json={"role": "member"}, headers=world.adam.headers)
    assert response.status_code == 403


async def test_owner_makes_an_admin_owner(api: httpx.AsyncClient, world: World) -> None:
    response = await api.patch(member(world, "adam"), json={"role": "owner"}, headers=world.olive.headers)
    assert (response.status_code, response.json()["role"]) == (200, "owner")


async def test_last_owner_cannot_step_down(api: httpx.AsyncClient, world: World) -> None:
    response = await api.patch(member(world, "olive"), json={"role": "admin"}, headers=world.olive.headers)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body", [{"role": "superuser"}, {"role": 1}, {}, {"role": "admin", "extra": True}, []]
)
async def test_invalid_role_change_is_422(api: httpx.AsyncClient, world: World, body: object) -> None:
    response = await api.patch(member(world, "mia"), json=body, headers=world.olive.headers)
    assert response.status_code == 422


async def test_body_that_is_not_json_is_400(api: httpx.AsyncClient, world: World) -> None:
    headers = {**world.olive.headers, "content-type": "application/json"}
    response = await api.patch(member(world, "mia"), content=b"{role:", headers=headers)
    assert response.status_code == 400


# Board access


async def test_admin_replaces_board_access(api: httpx.AsyncClient, world: World) -> None:
    body = {
        "can_read_all_boards": True,
        "can_write_all_boards": False,
        "board_access": [{"board_id": world.boards[1], "can_read": True, "can_write": True}],
    }
    response = await api.put(member(world, "mia") + "/access", json=body, headers=world.adam.headers)
    assert response.status_code == 200
    out = response.json()
    assert out["can_read_all_boards"] is True
    assert out["board_access"] == [{"board_id": world.boards[1], "can_read": True, "can_write": True}]


async def test_board_of_another_organization_is_422(api: httpx.AsyncClient, world: World) -> None:
    body = {"board_access": [{"board_id": world.other_board, "can_read": True}]}
    response = await api.put(member(world, "mia") + "/access", json=body, headers=world.adam.headers)
    assert response.status_code == 422


async def test_same_board_twice_is_422(api: httpx.AsyncClient, world: World) -> None:
    grant = {"board_id": world.boards[1], "can_read": True}
    response = await api.put(
        member(world, "mia") + "/access", json={"board_access": [grant, grant]}, headers=world.adam.headers
    )
    assert response.status_code == 422


async def test_member_cannot_change_board_access(api: httpx.AsyncClient, world: World) -> None:
    response = await api.put(
        member(world, "mia") + "/access", json={"can_read_all_boards": True}, headers=world.mia.headers
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"can_read_all_boards": "yes"},
        {"board_access": [{"board_id": "1"}]},
        {"board_access": {"board_id": 1}},
    ],
)
async def test_access_with_wrong_types_is_422(api: httpx.AsyncClient, world: World, body: object) -> None:
    response = await api.put(member(world, "mia") + "/access", json=body, headers=world.adam.headers)
    assert response.status_code == 422


# Removing


async def test_admin_removes_a_member_and_their_board_access_goes_too(
    api: httpx.AsyncClient, world: World
) -> None:
    response = await api.delete(member(world, "mia"), headers=world.adam.headers)
    assert response.status_code == 200
    assert response.json() == {"success": True, "id": world.mia.member_id}
    async with world.database.transaction() as session:
        left = await session.scalars(
            select(BoardAccess).where(BoardAccess.membership_id == world.mia.member_id)
        )
        assert list(left) == []
        assert (await session.get(User, world.mia.user.id)).active_organization_id is None  # type: ignore[union-attr]
    assert (await api.get(member(world, "mia"), headers=world.adam.headers)).status_code == 404


async def test_nobody_removes_themselves(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.delete(member(world, "adam"), headers=world.adam.headers)).status_code == 403


async def test_admin_cannot_remove_an_owner(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.delete(member(world, "olive"), headers=world.adam.headers)).status_code == 403


async def test_member_cannot_remove_anyone(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.delete(member(world, "adam"), headers=world.mia.headers)).status_code == 403


async def test_owner_removes_another_owner(api: httpx.AsyncClient, world: World) -> None:
    await api.patch(member(world, "adam"), json={"role": "owner"}, headers=world.olive.headers)
    assert (await api.delete(member(world, "adam"), headers=world.olive.headers)).status_code == 200


async def test_removed_members_active_organization_switches_to_another(
    api: httpx.AsyncClient, world: World
) -> None:
    from membership.models import Membership

    async with world.database.transaction() as session:
        session.add(
            Membership(organization_id=world.other_organization_id, user_id=world.mia.user.id, role="member")
        )
    await api.delete(member(world, "mia"), headers=world.olive.headers)
    async with world.database.transaction() as session:
        user = await session.get(User, world.mia.user.id)
    assert user is not None
    assert user.active_organization_id == world.other_organization_id


async def test_two_owners_racing_to_remove_each_other_leave_one_owner(
    api: httpx.AsyncClient, world: World
) -> None:
    await api.patch(member(world, "adam"), json={"role": "owner"}, headers=world.olive.headers)

    results = await asyncio.gather(
        api.delete(member(world, "adam"), headers=world.olive.headers),
        api.delete(member(world, "olive"), headers=world.adam.headers),
    )

    assert sorted(r.status_code for r in results)[0] == 200
    assert [r.status_code for r in results].count(200) == 1
    owners = (await api.get(MEMBERS, headers=world.olive.headers)) if results[0].status_code == 200 else None
    survivor = world.olive if results[0].status_code == 200 else world.adam
    listing = owners or await api.get(MEMBERS, headers=survivor.headers)
    assert [m["role"] for m in listing.json()["data"]].count("owner") == 1


# Authentication and hand-off


async def test_request_without_token_is_401_with_a_challenge(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(MEMBERS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nope", "Basic b2xpdmU6cHc=", "Bearer ", "bearer"])
async def test_bad_token_is_401(api: httpx.AsyncClient, world: World, header: str) -> None:
    assert (await api.get(MEMBERS, headers={"authorization": header})).status_code == 401


async def test_revoked_token_is_401(api: httpx.AsyncClient, world: World) -> None:
    from membership.directory import hash_token, revoke_token
    from membership.models import ApiToken

    async with world.database.transaction() as session:
        token = await session.scalar(
            select(ApiToken).where(ApiToken.token_hash == hash_token(world.adam.token))
        )
        assert token is not None
        await revoke_token(session, token.id)
    assert (await api.get(MEMBERS, headers=world.adam.headers)).status_code == 401


async def test_user_without_membership_is_403(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(MEMBERS, headers=world.nora.headers)).status_code == 403


async def test_every_change_is_handed_to_the_workers(
    api: httpx.AsyncClient, world: World, redis_client: object
) -> None:
    await api.patch(member(world, "mia"), json={"role": "admin"}, headers=world.olive.headers)
    await api.delete(member(world, "adam"), headers=world.olive.headers)

    async with world.database.transaction() as session:
        made_by_api = (
            select(MemberChange).where(MemberChange.cause.startswith("api:")).order_by(MemberChange.id)
        )
        changes = list(await session.scalars(made_by_api))
    assert [(c.user_id, c.kind) for c in changes] == [
        (world.mia.user.id, "update"),
        (world.adam.user.id, "remove"),
    ]
    queued = await redis_client.zrange("trellis:test:queue", 0, -1)  # type: ignore[attr-defined]
    assert sorted(q.decode() for q in queued) == sorted(f"member-change:{c.id}" for c in changes)


async def test_a_change_that_changes_nothing_is_not_handed_on(api: httpx.AsyncClient, world: World) -> None:
    await api.patch(member(world, "mia"), json={"role": "member"}, headers=world.olive.headers)
    async with world.database.transaction() as session:
        assert (
            list(await session.scalars(select(MemberChange).where(MemberChange.cause.startswith("api:"))))
            == []
        )
