"""Redis stops and starts again during a stream of deliveries: nothing acknowledged is lost or applied
twice, what was refused with 503 is applied once Trello delivers it again, and the receiver and the
worker carry on without a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.faults.conftest import LONG, Stack
from tests.stack import events_recorded_once_caught_up

CHANGES = 120 if LONG else 40


@pytest.mark.timeout(240)
async def test_deliveries_during_a_redis_outage_are_applied_once_each(stack: Stack) -> None:
    stack.up(retry_delay=0.5)
    state = await stack.linked_and_watched()

    for i in range(CHANGES):
        if i == CHANGES // 3:
            stack.redis.stop()
        if i == CHANGES // 3 + CHANGES // 4:
            stack.redis.start()
        await stack.change_by_hand(state, i)
        await asyncio.sleep(0.05)

    assert await stack.converged() == []
    attempts: list[dict[str, Any]] = await stack.admin("GET", "/_emulator/deliveries")
    acknowledged = {a["action_id"] for a in attempts if a["status"] == 200}
    refused = {a["action_id"] for a in attempts if a["status"] == 503}
    assert refused, "the outage refused nothing: it did not happen"
    assert refused <= acknowledged  # each refused delivery was delivered again and taken
    recorded = await events_recorded_once_caught_up(stack.store_url, len(acknowledged), within=20)
    assert recorded == len(acknowledged)  # each one, once
    assert stack.receiver.poll() is None
    assert all(worker.poll() is None for worker in stack.workers)
