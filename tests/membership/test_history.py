"""Reading the audit log: a person named as operators know them, and entries told with names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from membership.boards import set_board_access
from membership.directory import add_board
from membership.errors import NotFound
from membership.history import (
    AuditFilter,
    Names,
    action_words,
    entry_line,
    find_person,
    history,
    names_of,
)
from membership.members import find_member
from membership.models import AuditEntry, EventLogEntry
from membership.rules import Actor
from tests.fixtures.store import World


async def test_an_entry_names_the_person_and_the_board_it_is_about(world: World) -> None:
    async with world.database.transaction() as session:
        mia = await find_member(session, world.organization_id, world.mia.member_id)
        await set_board_access(session, Actor.system("reconcile"), mia, world.boards[1], "write", cause="t")
    async with world.database.transaction() as session:
        entries = await history(session, AuditFilter(person=await find_person(session, "mia@example.com")))
        line = entry_line(entries[-1], await names_of(session, entries))
    assert "board_access_synced" in line
    assert "Mia on Hiring" in line


def test_an_entry_about_something_gone_keeps_its_ids() -> None:
    entry = AuditEntry(
        actor="system:reconcile", cause="t", action="board_unlinked", entity="board", entity_id=9,
        user_id=None, trello_member_id="5f00000000000000000000aa", board_id=9,
    )  # fmt: skip
    entry.at = datetime(2026, 12, 1, tzinfo=UTC)
    assert "Trello member 5f00000000000000000000aa on board 9" in entry_line(entry)


async def test_an_entry_about_a_trello_member_linked_to_a_user_names_the_user(world: World) -> None:
    async with world.database.transaction() as session:
        mia = await find_member(session, world.organization_id, world.mia.member_id)
        mia.user.trello_member_id = "5f00000000000000000000bb"
        entry = AuditEntry(
            actor=f"user:{world.olive.user.id}", cause="t", action="RemoveFromTrello", entity="board",
            entity_id=None, user_id=None, trello_member_id="5f00000000000000000000bb", board_id=None,
        )  # fmt: skip
        entry.at = datetime(2026, 12, 1, tzinfo=UTC)
        names = await names_of(session, [entry])
    person = names.person(entry)
    assert person is not None
    assert (person.label, person.handle) == ("Mia", "mia@example.com")
    assert names.actor(entry) == "olive@example.com"  # she has no name: her email


def test_trellis_own_work_is_told_as_trellis_and_actions_as_words() -> None:
    entry = AuditEntry(actor="system:reconcile", cause="t", action="RemoveFromTrello", entity="board")

    assert Names().actor(entry) == "Trellis (reconcile)"
    assert action_words("RemoveFromTrello") == "remove from trello"
    assert action_words("board_access_synced") == "board access synced"


async def test_a_cause_names_the_trello_action_behind_it_by_its_type(world: World) -> None:
    action = "6b11293d7f65000000de3a0c"
    async with world.database.transaction() as session:
        session.add(EventLogEntry(action_id=action, type="removeMemberFromOrganization", payload={}))
    entry = AuditEntry(actor="system:offboard", cause=f"offboard (action:{action})", action="member_removed",
                       entity="membership")  # fmt: skip
    forgotten = AuditEntry(actor="system:offboard", cause="offboard (action:6b11293d7f65000000de3aff)",
                           action="member_removed", entity="membership")  # fmt: skip
    async with world.database.transaction() as session:
        names = await names_of(session, [entry, forgotten])

    assert names.cause(entry) == f"offboard (Trello action removeMemberFromOrganization {action})"
    assert names.cause(forgotten) == forgotten.cause  # pruned from the event log: told as recorded


async def test_an_offboarding_names_the_boards_it_took_the_person_off_and_those_refused(
    world: World,
) -> None:
    launch, payroll, unlinked = (
        "5f00000000000000000000c1",
        "5f00000000000000000000c2",
        "5f00000000000000000000c3",
    )
    async with world.database.transaction() as session:
        await add_board(session, world.organization_id, name="Launch", trello_board_id=launch)
        await add_board(session, world.organization_id, name="Payroll", trello_board_id=payroll)
    entry = AuditEntry(
        actor="system:offboard", cause="offboard", action="member_offboarded", entity="trello_member",
        trello_member_id="5f00000000000000000000dd",
        after={"boards": [launch, unlinked], "refused": [[payroll, "403 Forbidden"]]},
    )  # fmt: skip
    entry.at = datetime(2026, 12, 1, tzinfo=UTC)
    async with world.database.transaction() as session:
        names = await names_of(session, [entry])

    assert names.detail(entry) == f"off Launch, {unlinked} in Trello; Trello refused Payroll"
    assert f"(off Launch, {unlinked} in Trello; Trello refused Payroll)" in entry_line(entry, names)


def test_an_offboarding_that_found_the_person_on_no_board_says_so() -> None:
    entry = AuditEntry(actor="system:offboard", cause="offboard", action="member_offboarded",
                       entity="trello_member", after={"boards": [], "refused": []})  # fmt: skip

    assert Names().detail(entry) == "on no board in Trello"


async def test_someone_the_store_does_not_know_is_refused_by_name(world: World) -> None:
    async with world.database.transaction() as session:
        with pytest.raises(NotFound, match="no one known as 'nobody'"):
            await find_person(session, "nobody")
