"""The board view (Trellis's own, beside the seeds): who can see a board, guests marked apart."""

from __future__ import annotations

import httpx

from membership.boards import record_guests
from membership.models import Board
from tests.fixtures.store import SYSTEM, World

BOARDS = "/organizations/me/boards"


async def add_guest(world: World, board_id: int, trello_member_id: str, role: str) -> None:
    async with world.database.transaction() as session:
        board = await session.get(Board, board_id)
        assert board is not None
        await record_guests(session, SYSTEM, board, {trello_member_id: role}, cause="t")


async def test_admin_lists_the_workspace_boards_in_pages(api: httpx.AsyncClient, world: World) -> None:
    body = (await api.get(BOARDS, params={"limit": 2}, headers=world.adam.headers)).json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    assert [b["name"] for b in body["data"]] == ["Roadmap", "Hiring"]
    assert set(body["data"][0]) == {"id", "organization_id", "trello_board_id", "name", "closed"}


async def test_a_board_shows_members_with_access_and_guests_as_not_workspace_members(
    api: httpx.AsyncClient, world: World
) -> None:
    await add_guest(world, world.boards[0], "5f00000000000000000000aa", "normal")
    response = await api.get(f"{BOARDS}/{world.boards[0]}", headers=world.olive.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Roadmap"
    [mia] = body["members"]  # the owner and the admin have no access to Roadmap; mia reads it
    assert (mia["member_id"], mia["access"], mia["workspace_member"]) == (world.mia.member_id, "read", True)
    assert mia["user"]["email"] == "mia@example.com"
    [guest] = body["guests"]
    assert guest["trello_member_id"] == "5f00000000000000000000aa"
    assert (guest["board_role"], guest["workspace_member"]) == ("normal", False)


async def test_a_member_may_not_see_who_can_see_a_board(api: httpx.AsyncClient, world: World) -> None:
    assert (await api.get(f"{BOARDS}/{world.boards[0]}", headers=world.mia.headers)).status_code == 403
    assert (await api.get(BOARDS, headers=world.mia.headers)).status_code == 403


async def test_another_organizations_board_is_not_found(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(f"{BOARDS}/{world.other_board}", headers=world.olive.headers)
    assert response.status_code == 404
