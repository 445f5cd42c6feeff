"""The rules hold for every actor, the workers' system actor included."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from membership import members
from membership.errors import Forbidden, RuleViolation, Unprocessable
from membership.models import AuditEntry
from membership.rules import Actor, check_removal, check_role_change
from tests.fixtures.store import SYSTEM, World


async def test_system_cannot_remove_the_last_owner(world: World) -> None:
    async with world.database.transaction() as session:
        with pytest.raises(Unprocessable, match="at least one owner"):
            await members.remove_member(
                session, SYSTEM, world.organization_id, world.olive.member_id, cause="t"
            )


async def test_system_removes_an_admin(world: World) -> None:
    async with world.database.transaction() as session:
        removed = await members.remove_member(
            session, SYSTEM, world.organization_id, world.adam.member_id, cause="t"
        )
    assert removed["role"] == "admin"


async def test_a_refused_change_leaves_no_audit_record(world: World) -> None:
    async with world.database.transaction() as session:
        before = len(list(await session.scalars(select(AuditEntry))))
    actor = Actor("user:x", user_id=world.mia.user.id, membership_id=world.mia.member_id, role="member")

    async def demote_adam() -> None:
        async with world.database.transaction() as session:
            await members.change_role(
                session, actor, world.organization_id, world.adam.member_id, "member", cause="t"
            )

    with pytest.raises(Forbidden):
        await demote_adam()
    async with world.database.transaction() as session:
        assert len(list(await session.scalars(select(AuditEntry)))) == before


roles = st.sampled_from(["owner", "admin", "member"])
operations = st.lists(
    st.tuples(st.sampled_from(["change", "remove"]), st.integers(0, 4), st.integers(0, 4), roles), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(start=st.lists(roles, min_size=5, max_size=5), ops=operations)
def test_no_sequence_of_allowed_operations_leaves_an_organization_without_an_owner(
    start: list[str], ops: list[tuple[str, int, int, str]]
) -> None:
    organization = dict(enumerate(start))
    if "owner" not in organization.values():
        organization[0] = "owner"
    for op, by, target, role in ops:
        if by not in organization or target not in organization:
            continue
        actor = Actor(f"user:{by}", user_id=by, membership_id=by, role=organization[by])
        owners = list(organization.values()).count("owner")
        try:
            if op == "change":
                check_role_change(actor, organization[target], role, owners)
                organization[target] = role
            else:
                check_removal(actor, target, organization[target], owners)
                del organization[target]
        except RuleViolation:
            continue
        assert "owner" in organization.values()
