"""With `min_replicas`, a job counts as queued only once Redis's WAIT says a replica has it: a failover
cannot then lose what was acknowledged, and a replica that lags turns into a refusal, not a silent risk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bench.redis_ha import ReplicatedRedis
from jobs.queue import Job, JobQueue, NotReplicated
from tests.support import delivery, encode, signed_headers

QUEUE = "trellis:test:replicated"


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRedis]:
    redis = ReplicatedRedis(tmp_path_factory.mktemp("replicated"), sentinels=False)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
async def primary(replicated: ReplicatedRedis) -> AsyncIterator[Redis]:
    client = Redis(port=replicated.ports[0], socket_timeout=5)
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


async def test_a_confirmed_job_is_already_on_the_replica(replicated: ReplicatedRedis, primary: Redis) -> None:
    queue = JobQueue(primary, QUEUE, timeout=2, min_replicas=1)
    assert await queue.enqueue(Job("f", job_id="kept")) is True
    async with Redis(port=replicated.ports[1]) as replica:
        assert await replica.exists("arq:job:kept") == 1  # no waiting: WAIT said it is there


async def test_a_batch_no_replica_confirms_is_refused(replicated: ReplicatedRedis, primary: Redis) -> None:
    queue = JobQueue(primary, QUEUE, timeout=1.0, min_replicas=1)
    with replicated.replica_paused(), pytest.raises(NotReplicated, match="0 of 1 replica"):
        await queue.enqueue(Job("f", job_id="unconfirmed"))


async def test_a_refused_job_queued_again_is_not_queued_twice(
    replicated: ReplicatedRedis, primary: Redis
) -> None:
    queue = JobQueue(primary, QUEUE, timeout=1.0, min_replicas=1)
    with replicated.replica_paused(), pytest.raises(NotReplicated):
        await queue.enqueue(Job("f", job_id="again"))
    # Trello's retry, through a queue that gives the thawed replica time to catch up even on a busy
    # machine (750 ms was once too little while another test worker ran).
    patient = JobQueue(primary, QUEUE, timeout=5.0, min_replicas=1)
    assert await patient.enqueue(Job("f", job_id="again")) is False  # written the first time
    assert await primary.zcard(QUEUE) == 1


async def test_without_min_replicas_a_lagging_replica_does_not_hold_anything_up(
    replicated: ReplicatedRedis, primary: Redis
) -> None:
    queue = JobQueue(primary, QUEUE, timeout=0.4)
    with replicated.replica_paused():
        assert await queue.enqueue(Job("f", job_id="unwatched")) is True


async def test_a_primary_that_forgot_the_script_is_taught_it_again(primary: Redis) -> None:
    queue = JobQueue(primary, QUEUE, timeout=2, min_replicas=1)
    await queue.enqueue(Job("f", job_id="before"))
    await primary.script_flush()  # as a new primary after a failover, or a restart
    assert await queue.enqueue(Job("f", job_id="after")) is True


async def test_concurrent_jobs_share_one_wait(replicated: ReplicatedRedis, primary: Redis) -> None:
    queue = JobQueue(primary, QUEUE, timeout=2, min_replicas=1)
    before = (await primary.info("commandstats")).get("cmdstat_wait", {}).get("calls", 0)
    assert all(await queue.enqueue_many([Job("f", job_id=f"j{i}") for i in range(200)]))
    waits = (await primary.info("commandstats"))["cmdstat_wait"]["calls"] - before
    assert waits <= 3  # the first job's batch, and the rest together


async def test_a_delivery_no_replica_confirms_is_answered_503(
    replicated: ReplicatedRedis, make_settings: Any, client_for: Any
) -> None:
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{replicated.ports[0]}/0",
        redis_min_replicas=1,
        enqueue_timeout_seconds=0.4,
    )
    body = encode(delivery())
    async with client_for(settings) as client:
        with replicated.replica_paused():
            refused = await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
        taken = await client.post("/webhooks/trello", content=body, headers=signed_headers(body))
    assert (refused.status_code, taken.status_code) == (503, 200)
