"""The status board the workers write and the console reads."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from jobs import status
from jobs.status import StatusBoard


async def test_what_is_published_is_read_back_with_when_it_was_written(redis_client: Redis) -> None:
    board = StatusBoard(redis_client)
    before = time.time()

    await board.publish(status.RESYNC, reason="scheduled", scopes=3, changes=0)
    read = await board.read()

    assert read[status.RESYNC].figures == {"reason": "scheduled", "scopes": 3, "changes": 0}
    assert before <= read[status.RESYNC].at <= time.time()
    assert read[status.RESYNC].age() < 5


async def test_a_later_report_replaces_the_earlier_one(redis_client: Redis) -> None:
    board = StatusBoard(redis_client)

    await board.publish(status.WEBHOOKS, ok=1)
    await board.publish(status.WEBHOOKS, ok=2)

    assert (await board.read())[status.WEBHOOKS].figures == {"ok": 2}


async def test_an_empty_board_reads_as_nothing_reported(redis_client: Redis) -> None:
    assert await StatusBoard(redis_client).read() == {}
