"""The store (PostgreSQL) unreachable for a while: jobs retry and then succeed, nothing half-written.

The workers reach PostgreSQL through a TCP relay of the test's own, which the test cuts (every
connection dropped, none accepted) and restores.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from jobs.deadletters import DEAD_LETTERS_KEY
from tests.conftest import empty_postgres
from tests.faults.conftest import LONG, Stack
from tests.stack import events_recorded_once_caught_up
from tests.support import RedisServer, Relay

CHANGES = 90 if LONG else 30


@pytest.fixture
async def relayed_stack(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[Stack, Relay]]:
    target = urlsplit(postgres_url)
    relay = Relay(target.hostname or "127.0.0.1", target.port or 5432)
    await relay.open()
    relayed_url = postgres_url.replace(f"@{target.hostname}:{target.port}", f"@127.0.0.1:{relay.port}")
    redis = RedisServer(data_dir=tmp_path)
    redis.start()
    stack = Stack(tmp_path, redis, postgres_url)
    stack.env["TRELLIS_DATABASE_URL"] = relayed_url
    stack.env["TRELLIS_JOB_TIMEOUT_SECONDS"] = "5"  # a query stuck on the cut relay fails the try soon
    try:
        yield stack, relay
    finally:
        stack.down()
        redis.stop()
        if relay.server is not None:
            await relay.cut()
        await empty_postgres(postgres_url)


@pytest.mark.timeout(240)
async def test_jobs_retry_through_a_store_outage_and_then_succeed(relayed_stack: tuple[Stack, Relay]) -> None:
    stack, relay = relayed_stack
    stack.up()
    state = await stack.linked_and_watched()

    for i in range(CHANGES):
        if i == CHANGES // 3:
            await relay.cut()
        if i == 2 * CHANGES // 3:
            await relay.open()
        await stack.change_by_hand(state, i)
        await asyncio.sleep(0.1)

    assert await stack.converged(within=120) == []
    attempts: list[dict[str, Any]] = await stack.admin("GET", "/_emulator/deliveries")
    acknowledged = {a["action_id"] for a in attempts if a["status"] == 200}
    recorded = await events_recorded_once_caught_up(stack.store_url, len(acknowledged), within=30)
    assert recorded == len(acknowledged)
    assert "will retry" in stack.log("worker-0")  # the outage was felt, and ridden out
    redis = Redis.from_url(stack.redis.url)
    assert await redis.hlen(DEAD_LETTERS_KEY) == 0  # type: ignore[misc]
    await redis.aclose()
