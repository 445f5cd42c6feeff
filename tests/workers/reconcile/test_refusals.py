"""What Trello refuses is recorded and reported, not retried, and a refused observer is remembered."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from emulator.fixture import sample
from membership.boards import board_by_trello_id
from membership.database import Database
from membership.members import BoardGrant, regrant
from membership.models import AuditEntry, Organization
from membership.workspaces import linked_memberships
from tests.stack import store_like_trello
from tests.workers.conftest import ClientFactory
from workers.reconcile.board import reconcile_board


async def test_an_observer_refused_on_a_plan_without_them_is_recorded_then_falls_back(
    open_trello: ClientFactory, sqlite_url: str
) -> None:
    fixture = sample()
    fixture["workspaces"][0]["plan"] = "standard"  # no observers
    async with open_trello(fixture=fixture) as (trello, app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e") as admin:
            state: dict[str, Any] = (await admin.get("/_emulator/state")).json()
        await store_like_trello(sqlite_url, state, authority="local")
        roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
        ken = next(m["id"] for m in state["members"] if m["username"] == "ken.thompson")
        database = Database(sqlite_url)
        async with database.transaction() as session:
            # The store believes the plan has observers (it changed since), and gives Ken read access.
            await session.execute(update(Organization).values(observers_allowed=True))
            board = await board_by_trello_id(session, roadmap)
            assert board is not None
            membership = (await linked_memberships(session, board.organization_id))[ken]
            membership.board_access = regrant(membership.board_access, [BoardGrant(board.id, can_read=True)])

        first = await reconcile_board(trello, database, roadmap, cause="test")
        second = await reconcile_board(trello, database, roadmap, cause="test")

        async with database.transaction() as session:
            refusal = await session.scalar(select(AuditEntry).where(AuditEntry.action == "refused"))
            remembered = await session.scalar(select(Organization.observers_allowed))
        await database.dispose()
    assert first is not None
    assert [op.member_id for op, _ in first.refused] == [ken]
    assert refusal is not None
    assert refusal.after is not None
    assert refusal.after["member_id"] == ken
    assert remembered is False
    assert second is not None
    assert [(op.member_id, op.role) for op in second.applied] == [(ken, "normal")]  # type: ignore[union-attr]
