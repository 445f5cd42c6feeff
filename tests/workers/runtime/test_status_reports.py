"""What a worker tells the status board on its own: the rate limiter's use of its window."""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from jobs import status
from jobs.status import StatusBoard
from tests.workers.conftest import NAMESPACE
from workers.outside.limiter import Limit, Limiter
from workers.runtime.worker import publish_limiter_use


async def test_a_worker_reports_the_limiters_use_every_few_seconds(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE)
    for _ in range(4):
        async with limiter.permit([Limit("trello:token:ab12", 100, 10.0)]):
            pass

    reporter = asyncio.create_task(publish_limiter_use(limiter, redis_client, every=0.05))
    await asyncio.sleep(0.3)
    reporter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reporter

    report = (await StatusBoard(redis_client).read())[status.LIMITER]
    assert report.figures["limits"] == [
        {"name": "trello:token:ab12", "used": 4, "maximum": 100, "window": 10.0}
    ]


async def test_a_worker_that_never_called_reports_nothing(redis_client: Redis) -> None:
    reporter = asyncio.create_task(
        publish_limiter_use(Limiter(redis_client, NAMESPACE), redis_client, every=0.05)
    )
    await asyncio.sleep(0.2)
    reporter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reporter

    assert status.LIMITER not in await StatusBoard(redis_client).read()
