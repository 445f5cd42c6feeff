"""The board view a reconcile reads, and the writer that records what Trello gave, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from membership import outbox
from membership.boards import board_view, effective_access, set_board_access
from membership.members import AccessChange, BoardGrant, set_access
from membership.models import AuditEntry, Board, User
from membership.workspaces import linked_memberships
from tests.fixtures.store import SYSTEM, World


async def link_to_trello(world: World) -> None:
    async with world.database.transaction() as session:
        for name in ("olive", "adam", "mia"):
            user = await session.get(User, world.people[name].user.id)
            assert user is not None
            user.trello_member_id = f"trello-{name}"


async def test_effective_access_is_the_override_else_the_organization_wide_flags(world: World) -> None:
    async with world.database.transaction() as session:
        change = AccessChange(
            can_read_all_boards=True, board_access=[BoardGrant(world.boards[1], can_write=True)]
        )
        await set_access(session, SYSTEM, world.organization_id, world.adam.member_id, change, cause="t")
    await link_to_trello(world)
    async with world.database.transaction() as session:
        board = await session.get(Board, world.boards[0])
        assert board is not None
        view = await board_view(session, board)
        adam = (await linked_memberships(session, world.organization_id))["trello-adam"]
        assert effective_access(adam, world.boards[1]) == "write"  # the override
        assert effective_access(adam, world.boards[2]) == "read"  # can_read_all_boards
        second = await session.get(Board, world.boards[1])
        assert second is not None
        assert (await board_view(session, second)).access["trello-adam"] == "write"
    assert view.access == {"trello-olive": "none", "trello-adam": "read", "trello-mia": "read"}


async def test_members_not_linked_to_trello_are_left_out(world: World) -> None:
    async with world.database.transaction() as session:
        board = await session.get(Board, world.boards[0])
        assert board is not None
        assert (await board_view(session, board)).access == {}


async def test_members_with_changes_to_push_are_pending(world: World) -> None:
    await link_to_trello(world)
    async with world.database.transaction() as session:
        for change in await outbox.pending(session):  # the fixture's own set_access
            await outbox.mark_done(session, change.id)
        await outbox.add(
            session,
            organization_id=world.organization_id,
            user_id=world.adam.user.id,
            kind="update",
            cause="t",
        )
        board = await session.get(Board, world.boards[0])
        assert board is not None
        assert (await board_view(session, board)).pending == {"trello-adam"}


async def test_recording_what_trello_gave_sets_an_override_and_audits_it(world: World) -> None:
    await link_to_trello(world)
    async with world.database.transaction() as session:
        board = await session.get(Board, world.boards[2])
        assert board is not None
        mia = (await linked_memberships(session, world.organization_id))["trello-mia"]
        await set_board_access(session, SYSTEM, mia, board.id, "write", cause="action:abc")
    async with world.database.transaction() as session:
        board = await session.get(Board, world.boards[2])
        assert board is not None
        assert (await board_view(session, board)).access["trello-mia"] == "write"
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "board_access_synced"))
    assert entry is not None
    assert entry.cause == "action:abc"


async def test_a_plan_held_again_updates_its_open_approval(world: World) -> None:
    from membership import approvals

    async with world.database.transaction() as session:
        first = await approvals.request(
            session, kind="plan", organization_id=world.organization_id, scope="board:b1", summary="3 of 5",
            payload={"losing": ["a", "b", "c"]}, actor=SYSTEM, cause="t",
        )  # fmt: skip
        again = await approvals.request(
            session, kind="plan", organization_id=world.organization_id, scope="board:b1", summary="4 of 5",
            payload={"losing": ["a", "b", "c", "d"]}, actor=SYSTEM, cause="t",
        )  # fmt: skip
        assert again.id == first.id
        assert [a.summary for a in await approvals.open_approvals(session)] == ["4 of 5"]
