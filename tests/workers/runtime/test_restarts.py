"""A worker that lost Redis: the jobs it had started run again as soon as Redis is back, not once arq's
in-progress marks lapse minutes later."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import func
from redis.exceptions import RedisError

from jobs.connection import RedisTarget
from tests.support import RedisServer
from workers.runtime.restarts import RestartableWorker, release_unfinished


async def pool_of(server: RedisServer) -> ArqRedis:
    return await create_pool(RedisSettings.from_dsn(server.url))


async def test_a_run_whose_end_arq_could_not_record_is_unfinished(own_redis: RedisServer) -> None:
    async def refuses_writes_from_now_on(ctx: dict[str, Any]) -> None:
        # As a Redis out of memory or short of replicas does: reads work, writes are refused. arq
        # cannot record the job's end, and raises only once it has taken the run out of its table.
        await asyncio.sleep(0.1)  # after arq's first health record, a write that must not be refused
        await ctx["redis"].config_set("min-replicas-to-write", 1)

    pool = await pool_of(own_redis)
    await pool.enqueue_job("refuses_writes_from_now_on", _job_id="the-job")
    worker = RestartableWorker(
        functions=[func(refuses_writes_from_now_on, name="refuses_writes_from_now_on")],
        redis_pool=pool,
        burst=True,
        poll_delay=0.05,
        handle_signals=False,
    )
    with pytest.raises(RedisError):
        await worker.async_run()

    assert "the-job" not in worker.tasks
    assert worker.unfinished() == {"the-job"}
    await pool.config_set("min-replicas-to-write", 0)
    await worker.close()


async def test_released_jobs_lose_their_in_progress_marks(own_redis: RedisServer) -> None:
    pool = await pool_of(own_redis)
    await pool.set(in_progress_key_prefix + "started", b"1")
    await pool.set(in_progress_key_prefix + "someone-elses", b"1")

    left = await release_unfinished(RedisTarget(own_redis.url), {"started", "gone-already"})

    assert left == set()
    assert await pool.exists(in_progress_key_prefix + "started") == 0
    assert await pool.exists(in_progress_key_prefix + "someone-elses") == 1
    await pool.aclose()


async def test_jobs_not_released_while_redis_is_away_are_kept_for_the_next_try(
    own_redis: RedisServer,
) -> None:
    own_redis.stop()

    left = await release_unfinished(RedisTarget(own_redis.url), {"started"})

    own_redis.start()
    assert left == {"started"}
