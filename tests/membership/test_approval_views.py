"""Held plans, waves and account deactivations told as changes a person can read."""

from __future__ import annotations

import pytest

from membership import approvals
from membership.approval_views import open_approvals_of
from membership.errors import Forbidden
from membership.models import User
from membership.rules import Actor
from tests.fixtures.store import Person, World

MIA_IN_TRELLO = "5a0000000000000000000007"
RECONCILER = Actor.system("reconcile")


def acting(person: Person) -> Actor:
    assert person.membership is not None
    return Actor(f"user:{person.user.id}", person.user.id, person.member_id, person.membership.role)


async def mia_in_trello(world: World) -> None:
    async with world.database.transaction() as session:
        mia = await session.get(User, world.mia.user.id)
        assert mia is not None
        mia.trello_member_id = MIA_IN_TRELLO


async def test_a_wave_reads_as_each_person_offboarded_off_their_boards(world: World) -> None:
    await mia_in_trello(world)
    async with world.database.transaction() as session:
        await approvals.request(
            session, kind="wave", organization_id=world.organization_id, scope="wave:w",
            summary="6 people left workspace w within 600 s (more than 5)",
            payload={"workspace": "w", "members": [MIA_IN_TRELLO, "5a00000000000000000000ff"],
                     "boards": {MIA_IN_TRELLO: ["Roadmap", "Hiring"]}},
            actor=RECONCILER, cause="wave",
        )  # fmt: skip
        (view,) = await open_approvals_of(session, acting(world.olive), world.organization_id)

    mia, unknown = view.changes
    assert (mia.person, mia.change, mia.loses) == ("Mia", "offboarded: off Roadmap, Hiring", True)
    assert (unknown.person, unknown.change) == ("5a00000000000000000000ff", "offboarded: off every board")


async def test_an_account_deactivation_reads_as_every_atlassian_product(world: World) -> None:
    async with world.database.transaction() as session:
        await approvals.request(
            session, kind="scim_deactivate", organization_id=world.organization_id,
            scope="account:mia@example.com", summary="deactivate the Atlassian account of mia@example.com",
            payload={"email": "mia@example.com", "member_id": None, "user_id": None, "scim_id": "s1"},
            actor=RECONCILER, cause="offboard",
        )  # fmt: skip
        (view,) = await open_approvals_of(session, acting(world.olive), world.organization_id)

    assert view.changes[0].person == "mia@example.com"
    assert "every Atlassian product" in view.changes[0].change


async def test_a_member_may_not_read_the_approvals(world: World) -> None:
    async with world.database.transaction() as session:
        with pytest.raises(Forbidden):
            await open_approvals_of(session, acting(world.mia), world.organization_id)
