"""`GET /organizations/me/audit`: the organization's audit trail, for its owners and admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from membership.boards import set_board_access
from membership.members import find_member
from membership.models import AuditEntry
from membership.rules import Actor
from tests.fixtures.store import World
from tests.receiver.api.conftest import member

AUDIT = "/organizations/me/audit"


async def test_an_admin_reads_a_members_changes_newest_first_with_the_api_call_that_caused_them(
    api: httpx.AsyncClient, world: World
) -> None:
    await api.patch(member(world, "mia"), json={"role": "admin"}, headers=world.adam.headers)
    await api.patch(member(world, "mia"), json={"role": "member"}, headers=world.adam.headers)

    response = await api.get(AUDIT, params={"member_id": world.mia.member_id}, headers=world.olive.headers)

    assert response.status_code == 200
    body = response.json()
    changes = [e for e in body["data"] if e["action"] == "role_changed"]
    assert [e["after"]["role"] for e in changes] == ["member", "admin"]  # newest first
    assert all(e["cause"].startswith(f"api:PATCH {member(world, 'mia')}") for e in changes)
    assert {e["actor"] for e in changes} == {f"user:{world.adam.user.id}"}
    assert {e["user_id"] for e in body["data"]} == {world.mia.user.id}
    assert body["total"] == len(body["data"])


async def test_a_member_who_is_not_an_admin_is_refused(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(AUDIT, headers=world.mia.headers)
    assert response.status_code == 403


async def test_another_organizations_changes_are_never_shown(api: httpx.AsyncClient, world: World) -> None:
    async with world.database.transaction() as session:
        theirs = set(
            await session.scalars(
                select(AuditEntry.id).where(AuditEntry.organization_id == world.other_organization_id)
            )
        )
    body = (await api.get(AUDIT, params={"limit": 100}, headers=world.olive.headers)).json()
    shown = {e["id"] for e in body["data"]}
    assert theirs  # both organizations' setups are audited
    assert shown
    assert shown.isdisjoint(theirs)


async def test_a_board_filter_keeps_that_boards_changes_only(api: httpx.AsyncClient, world: World) -> None:
    async with world.database.transaction() as session:  # what Trello gave, as a reconcile records it
        mia = await find_member(session, world.organization_id, world.mia.member_id)
        await set_board_access(session, Actor.system("reconcile"), mia, world.boards[1], "write", cause="t")

    on_board = (
        await api.get(AUDIT, params={"board_id": world.boards[1]}, headers=world.olive.headers)
    ).json()
    elsewhere = (
        await api.get(AUDIT, params={"board_id": world.boards[2]}, headers=world.olive.headers)
    ).json()

    assert {e["board_id"] for e in on_board["data"]} == {world.boards[1]}
    assert elsewhere["data"] == []


async def test_since_leaves_out_what_came_before(api: httpx.AsyncClient, world: World) -> None:
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = (await api.get(AUDIT, params={"since": later}, headers=world.olive.headers)).json()
    assert (body["data"], body["total"]) == ([], 0)


async def test_a_member_of_another_organization_is_404(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(
        AUDIT, params={"member_id": world.people["xavier"].member_id}, headers=world.olive.headers
    )
    assert response.status_code == 404
