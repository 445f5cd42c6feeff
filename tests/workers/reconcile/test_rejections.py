"""A plan an operator rejected stays rejected until the state it was computed from changes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete, update

from membership import approvals
from membership.database import Database
from membership.models import BoardAccess, Membership
from tests.stack import store_like_trello
from tests.workers.conftest import ClientFactory
from workers.reconcile.board import reconcile_board
from workers.reconcile.plan import Policy

# Enforcing, and the guard holds any plan that takes access from more than one person.
STRICT = Policy(authority="local", guard_members=1, guard_share=1.0)


async def test_a_rejected_plan_is_not_held_again_nor_applied_until_the_board_changes(
    open_trello: ClientFactory, sqlite_url: str
) -> None:
    async with open_trello() as (trello, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as admin:
            state: dict[str, Any] = (await admin.get("/_emulator/state")).json()
            await store_like_trello(sqlite_url, state, authority="local")
            roadmap = next(b["id"] for b in state["boards"] if b["name"] == "Roadmap")
            database = Database(sqlite_url)
            async with database.transaction() as session:  # the store grants no one the board any more
                await session.execute(delete(BoardAccess))
                await session.execute(
                    update(Membership).values(can_read_all_boards=False, can_write_all_boards=False)
                )
            held = await reconcile_board(trello, database, roadmap, cause="test", policy=STRICT)
            assert held is not None
            assert held.approval_id is not None
            async with database.transaction() as session:
                await approvals.decide(session, held.approval_id, approve=False, by="operator:test")

            again = await reconcile_board(trello, database, roadmap, cause="test", policy=STRICT)

            async with database.transaction() as session:
                still_open = await approvals.open_approvals(session)
            newcomer = (await admin.post("/_emulator/members", json={"username": "nell"})).json()
            await admin.put(f"/_emulator/boards/{roadmap}/members/{newcomer['id']}", json={"type": "normal"})
            changed = await reconcile_board(trello, database, roadmap, cause="test", policy=STRICT)
            await database.dispose()
    assert again is not None
    assert (again.approval_id, again.rejected, again.applied) == (held.approval_id, True, [])
    assert still_open == []
    assert changed is not None
    assert changed.approval_id not in (None, held.approval_id)  # a new plan: held anew
    assert changed.rejected is False
