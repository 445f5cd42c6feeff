"""A delivery seen before, or an old one, is only a hint to look again: it starts no offboarding.

Trello signs no timestamp, so a captured `removeMemberFromOrganization` can be replayed at will, long
after its job's result expired; its follow-up must not take a person's later access away again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from redis.asyncio import Redis

from jobs.queue import JobQueue
from membership.database import Database, migrate
from tests.support import delivery, trello_id
from trellis.settings import Settings
from workers.runtime.config import JobRules
from workers.runtime.context import CONTEXT_KEY
from workers.runtime.functions import apply_event
from workers.runtime.scopes import Scopes
from workers.runtime.waves import Departures, WaveRules

WORKSPACE = "5f0c0c0c0c0c0c0c0c0c0c0c"


def removal(at: datetime) -> dict[str, Any]:
    payload = delivery("removeMemberFromOrganization", date=at.isoformat().replace("+00:00", "Z"))
    payload["action"]["data"] = {"organization": {"id": WORKSPACE, "name": "Acme"}, "idMember": trello_id()}
    return payload


async def context(settings: Settings, redis: Redis, database: Database) -> dict[str, Any]:
    queue = JobQueue(redis, settings.queue_name)
    worker = SimpleNamespace(
        database=database,
        clients=SimpleNamespace(trello=object()),  # credentials configured: deliveries are followed up
        rules=JobRules(),
        queue=queue,
        scopes=Scopes(redis, queue, debounce=0),
        departures=Departures(redis, WaveRules(settle_seconds=0)),
        config=SimpleNamespace(max_event_age_seconds=6 * 3600, waves=WaveRules(settle_seconds=0)),
    )
    return {CONTEXT_KEY: worker, "job_id": "x", "job_try": 1}


async def offboardings(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter("arq:job:offboard:*")]


async def test_a_fresh_removal_starts_one_offboarding(settings: Settings, redis_client: Redis) -> None:
    await migrate(settings.database_url)
    database = Database(settings.database_url)
    ctx = await context(settings, redis_client, database)

    await apply_event(ctx, removal(datetime.now(UTC)))

    await database.dispose()
    assert len(await offboardings(redis_client)) == 1


async def test_the_same_removal_delivered_again_later_starts_no_second_offboarding(
    settings: Settings, redis_client: Redis
) -> None:
    await migrate(settings.database_url)
    database = Database(settings.database_url)
    ctx = await context(settings, redis_client, database)
    payload = removal(datetime.now(UTC))
    assert await apply_event(ctx, payload) == "recorded"
    await redis_client.delete(*await offboardings(redis_client))  # ran, and its job is long gone

    outcome = await apply_event(ctx, payload)  # the replay, after any kept result expired

    await database.dispose()
    assert outcome == "duplicate"
    assert await offboardings(redis_client) == []
    assert await redis_client.zcard(settings.queue_name) > 0  # the scope is still looked at again


async def test_a_removal_older_than_the_maximum_age_starts_no_offboarding(
    settings: Settings, redis_client: Redis
) -> None:
    await migrate(settings.database_url)
    database = Database(settings.database_url)
    ctx = await context(settings, redis_client, database)

    outcome = await apply_event(ctx, removal(datetime.now(UTC) - timedelta(hours=7)))

    await database.dispose()
    assert outcome == "recorded"
    assert await offboardings(redis_client) == []
