"""Invites outlive nothing: they expire, one waits per email, they die with a removed membership, and
"the same email" means one thing everywhere."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from membership.directory import create_user
from membership.errors import Conflict
from membership.models import AuditEntry, Invite, utcnow
from tests.fixtures.store import SYSTEM, World
from tests.receiver.api.conftest import member
from tests.receiver.api.test_invites import ACCEPT, INVITES, invite


async def age(world: World, days: int) -> None:
    async with world.database.transaction() as session:
        await session.execute(update(Invite).values(created_at=utcnow() - timedelta(days=days)))


async def test_an_invite_older_than_its_lifetime_answers_as_an_unknown_one(
    api: httpx.AsyncClient, world: World
) -> None:
    created = (await invite(api, world.adam, email="nora@example.com")).json()
    await age(world, 15)  # the default lifetime is 14 days
    accepted = await api.post(ACCEPT, json={"token": created["token"]}, headers=world.nora.headers)
    listed = (await api.get(INVITES, headers=world.adam.headers)).json()
    assert accepted.status_code == 404
    assert listed["total"] == 0


async def test_a_second_pending_invite_for_one_email_is_409(api: httpx.AsyncClient, world: World) -> None:
    first = await invite(api, world.adam, email="nora@example.com")
    second = await invite(api, world.adam, email="NORA@example.com", role="admin")
    assert (first.status_code, second.status_code) == (201, 409)
    assert f"invite {first.json()['id']}" in second.json()["detail"]


async def test_an_expired_invite_does_not_stand_in_the_way_of_a_new_one(
    api: httpx.AsyncClient, world: World
) -> None:
    await invite(api, world.adam, email="nora@example.com")
    await age(world, 30)
    assert (await invite(api, world.adam, email="nora@example.com")).status_code == 201


async def test_removing_a_member_revokes_their_pending_invites(api: httpx.AsyncClient, world: World) -> None:
    # Mia, a member, is invited again (as admin) before an admin removes her: that invite must die too.
    async with world.database.transaction() as session:
        session.add(Invite(organization_id=world.organization_id, email="mia@example.com", role="admin",
                           token="A" * 24, board_access=[]))  # fmt: skip
    removed = await api.delete(member(world, "mia"), headers=world.adam.headers)
    again = await api.post(ACCEPT, json={"token": "A" * 24}, headers=world.mia.headers)
    async with world.database.transaction() as session:
        revoked = await session.scalar(select(AuditEntry).where(AuditEntry.action == "invite_revoked"))
    assert removed.status_code == 200
    assert again.status_code == 404
    assert revoked is not None
    assert revoked.cause.endswith("member removed")


async def test_a_casefold_twin_is_the_same_email_everywhere(api: httpx.AsyncClient, world: World) -> None:
    created = await invite(api, world.adam, email="STRASSE@example.com")
    async with world.database.transaction() as session:
        twin = await create_user(session, "straße@example.com", "Twin", actor=SYSTEM)
        stored = twin.email
        try:
            await create_user(session, "Strasse@example.com", "Third", actor=SYSTEM)
            third = None
        except Conflict as conflict:
            third = conflict
    assert created.json()["email"] == "strasse@example.com"
    assert stored == "strasse@example.com"  # one form in the store: the invite is hers by the same rule
    assert third is not None


async def test_full_width_letters_are_their_plain_twins(api: httpx.AsyncClient, world: World) -> None:
    created = await invite(api, world.adam, email="\uff4e\uff4f\uff52\uff41@example.com")  # in full width
    assert created.json()["email"] == "nora@example.com"
    accepted = await api.post(ACCEPT, json={"token": created.json()["token"]}, headers=world.nora.headers)
    assert accepted.status_code == 200
