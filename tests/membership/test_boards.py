"""The board view a reconcile reads, and the writer that records what Trello gave, on both databases."""

from __future__ import annotations

from sqlalchemy import select

from membership import outbox
from membership.boards import board_guests, board_view, effective_access, record_guests, set_board_access
from membership.members import AccessChange, BoardGrant, set_access
from membership.models import AuditEntry, Board, User
from membership.workspaces import adopt_member, linked_memberships
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
        view = await board_view(session, board, on_board={"trello-olive"})
        adam = (await linked_memberships(session, world.organization_id))["trello-adam"]
        assert effective_access(adam, world.boards[1]) == "write"  # the override
        assert effective_access(adam, world.boards[2]) == "read"  # can_read_all_boards
        second = await session.get(Board, world.boards[1])
        assert second is not None
        assert (await board_view(session, second)).access["trello-adam"] == "write"
    assert view.access == {"trello-olive": "none", "trello-adam": "read", "trello-mia": "read"}


async def test_members_without_access_are_left_out_unless_trello_has_them_on_the_board(world: World) -> None:
    await link_to_trello(world)
    async with world.database.transaction() as session:
        board = await session.get(Board, world.boards[0])
        assert board is not None
        absent = await board_view(session, board)
        present = await board_view(session, board, on_board={"trello-olive"})
    assert "trello-olive" not in absent.access  # no access, not on the board: nothing to plan
    assert present.access["trello-olive"] == "none"  # on the board without access: to be planned


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
        assert (await board_view(session, board, on_board={"trello-adam"})).pending == {"trello-adam"}


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


async def record(world: World, board_id: int, guests: dict[str, str], cause: str = "t") -> None:
    async with world.database.transaction() as session:
        board = await session.get(Board, board_id)
        assert board is not None
        await record_guests(session, SYSTEM, board, guests, cause=cause)


async def guests_of(world: World, board_id: int) -> dict[str, str]:
    async with world.database.transaction() as session:
        return {g.trello_member_id: g.role for g in await board_guests(session, board_id)}


async def test_recording_guests_adds_the_new_updates_roles_and_drops_the_gone(world: World) -> None:
    await record(world, world.boards[0], {"gus": "normal", "gia": "observer"})
    await record(world, world.boards[0], {"gus": "observer", "guy": "normal"}, cause="action:xyz")
    assert await guests_of(world, world.boards[0]) == {"gus": "observer", "guy": "normal"}
    assert await guests_of(world, world.boards[1]) == {}
    async with world.database.transaction() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "board_guests_seen"))
        ).all()
    assert [e.cause for e in entries] == ["t", "action:xyz"]
    assert entries[1].before == {"guests": {"gus": "normal", "gia": "observer"}}


async def test_recording_the_same_guests_again_writes_nothing(world: World) -> None:
    await record(world, world.boards[0], {"gus": "normal"})
    await record(world, world.boards[0], {"gus": "normal"})
    async with world.database.transaction() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "board_guests_seen"))
        ).all()
    assert len(entries) == 1


async def test_a_guest_adopted_as_a_workspace_member_is_a_guest_no_longer(world: World) -> None:
    await record(world, world.boards[0], {"trello-nora": "normal", "gus": "normal"})
    await record(world, world.other_board, {"trello-nora": "normal"})
    async with world.database.transaction() as session:
        nora = await session.get(User, world.nora.user.id)
        assert nora is not None
        nora.trello_member_id = "trello-nora"
        await adopt_member(session, SYSTEM, world.organization_id, nora, role="member", cause="t")
    assert await guests_of(world, world.boards[0]) == {"gus": "normal"}
    assert await guests_of(world, world.other_board) == {"trello-nora": "normal"}  # another workspace's


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
