"""Trello misbehaving: 5xx answers, answers too slow to wait for, 429s in bursts. Calls are retried
within bounds, the 429s do not turn into a storm, and the store ends as Trello is."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from jobs.deadletters import DEAD_LETTERS_KEY
from tests.faults.conftest import LONG, Stack
from tests.stack import KEY, TOKEN

CHANGES = 60 if LONG else 24


@pytest.mark.timeout(300)
async def test_through_5xx_timeouts_and_429_bursts_the_store_ends_as_trello_is(stack: Stack) -> None:
    stack.env["TRELLIS_HTTP_TIMEOUT_SECONDS"] = "0.5"
    stack.up(workers=2)
    state = await stack.linked_and_watched()
    phases = [
        {"error_rate": 0.3},  # a third of the calls answered 500
        {"error_rate": 0.0, "latency_ms": 800},  # every answer later than the client waits
        {"latency_ms": 0},
    ]
    third = CHANGES // 3
    for i in range(CHANGES):
        if i % third == 0 and i // third < len(phases):
            await stack.admin("PUT", "/_emulator/faults", json=phases[i // third])
        if i == 2 * third:  # another client of the same token spends its window: 429s for us
            await stack.admin("PUT", "/_emulator/limits", json={"token_max": 8, "token_window": 2.0})
            for _ in range(8):
                await stack.admin("GET", f"/1/organizations/{state['workspaces'][0]['id']}",
                                  params={"key": KEY, "token": TOKEN})  # fmt: skip
        await stack.change_by_hand(state, i)
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    # Setting the limits starts the emulator's counts afresh: read the burst's first.
    burst = (await stack.admin("GET", "/_emulator/counters"))["rejected"].get(f"token:{TOKEN}", 0)
    await stack.admin("PUT", "/_emulator/limits", json={"token_max": 100, "token_window": 10.0})

    assert await stack.converged(within=120) == []
    after = (await stack.admin("GET", "/_emulator/counters"))["rejected"].get(f"token:{TOKEN}", 0)
    assert burst > 0, "no 429 came back: the burst did not happen"
    assert burst + after < 60  # every worker pauses on a 429: no storm (Trello blocks a key past 200)
    redis = Redis.from_url(stack.redis.url)
    assert await redis.hlen(DEAD_LETTERS_KEY) == 0  # type: ignore[misc]
    await redis.aclose()
