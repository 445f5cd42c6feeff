"""Deliveries duplicated, delayed and reordered at scale: the store ends as clean deliveries would
leave it (as Trello is), each action recorded once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.conftest import LONG, Stack
from tests.stack import events_recorded_once_caught_up

CHANGES = 200 if LONG else 60


@pytest.mark.timeout(240)
async def test_duplicated_delayed_and_reordered_deliveries_converge(stack: Stack) -> None:
    stack.up(workers=2)
    state = await stack.linked_and_watched()
    await stack.admin("PUT", "/_emulator/faults",
                      json={"duplicate_rate": 0.3, "reorder_rate": 0.5, "reorder_max_ms": 800})  # fmt: skip
    boards = [b["id"] for b in state["boards"]]
    people = [m["id"] for m in state["members"] if m["username"] not in ("trellis_admin", "ada.lovelace")]
    for i in range(CHANGES):
        # Each person's role on a board changes back and forth: only the order of the actions says which
        # came last, and deliveries come out of order.
        role = ("normal", "admin", "normal")[i % 3]
        board, person = boards[(i // 3) % len(boards)], people[(i // 3) % len(people)]
        await stack.admin("PUT", f"/_emulator/boards/{board}/members/{person}", json={"type": role})

    assert await stack.converged(within=120) == []
    attempts: list[dict[str, Any]] = await stack.admin("GET", "/_emulator/deliveries")
    acknowledged = {a["action_id"] for a in attempts if a["status"] == 200}
    assert len([a for a in attempts if a["status"] == 200]) > len(acknowledged)  # duplicates were sent
    recorded = await events_recorded_once_caught_up(stack.store_url, len(acknowledged), within=20)
    assert recorded == len(acknowledged)
