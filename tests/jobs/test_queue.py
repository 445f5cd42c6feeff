"""The job queue writes what arq's own enqueue writes, once per job id, in batches."""

from __future__ import annotations

import asyncio

import pytest
from arq.connections import RedisSettings, create_pool
from arq.jobs import deserialize_job
from redis.asyncio import Redis

from jobs.queue import Job, JobQueue, RawJSON, deserialize, serialize
from tests.support import RedisServer

QUEUE = "trellis:test:queue"


async def stored_job(redis: Redis, job_id: str) -> object:
    return deserialize_job(await redis.get(f"arq:job:{job_id}"), deserializer=deserialize)


async def test_job_is_stored_as_arq_would_store_it(redis_client: Redis, redis_url: str) -> None:
    queue = JobQueue(redis_client, QUEUE)
    await queue.enqueue(Job("reconcile_board", ("b1",), {"reason": "test"}, job_id="ours"))

    settings = RedisSettings.from_dsn(redis_url)
    arq = await create_pool(settings, job_serializer=serialize, job_deserializer=deserialize)
    await arq.enqueue_job("reconcile_board", "b1", reason="test", _job_id="theirs", _queue_name=QUEUE)
    await arq.aclose()

    ours, theirs = await stored_job(redis_client, "ours"), await stored_job(redis_client, "theirs")
    assert (ours.function, ours.args, ours.kwargs) == (theirs.function, theirs.args, theirs.kwargs)  # type: ignore[attr-defined]
    assert await redis_client.pttl("arq:job:ours") == pytest.approx(
        await redis_client.pttl("arq:job:theirs"), abs=2000
    )
    assert {m.decode() for m in await redis_client.zrange(QUEUE, 0, -1)} == {"ours", "theirs"}


async def test_raw_json_argument_is_embedded_as_given(redis_client: Redis) -> None:
    queue = JobQueue(redis_client, QUEUE)
    await queue.enqueue(
        Job("apply_event", (RawJSON(b'{"action": {"id": "x", "name": "Zo\\u00eb"}}'),), job_id="j")
    )
    job = await stored_job(redis_client, "j")
    assert job.args == [{"action": {"id": "x", "name": "Zoë"}}]  # type: ignore[attr-defined]


async def test_job_id_already_queued_is_not_queued_again(redis_client: Redis) -> None:
    queue = JobQueue(redis_client, QUEUE)
    outcomes = [await queue.enqueue(Job("f", job_id="same")), await queue.enqueue(Job("f", job_id="same"))]
    assert outcomes == [True, False]
    assert await redis_client.zcard(QUEUE) == 1


async def test_job_id_with_a_kept_result_is_not_queued_again(redis_client: Redis) -> None:
    await redis_client.set("arq:result:done", b"{}")
    assert await JobQueue(redis_client, QUEUE).enqueue(Job("f", job_id="done")) is False


async def test_concurrent_enqueues_share_round_trips(own_redis: RedisServer) -> None:
    # A server of the test's own: its command counts are the test's alone.
    redis = Redis.from_url(own_redis.url)
    queue = JobQueue(redis, QUEUE)
    outcomes = await queue.enqueue_many([Job("f", (i,), job_id=f"job-{i}") for i in range(300)])
    calls = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    queued = await redis.zcard(QUEUE)
    await queue.aclose()
    await redis.aclose()
    assert outcomes == [True] * 300
    assert queued == 300
    assert calls <= 3


@pytest.mark.parametrize("max_in_flight", [1, 2])
async def test_a_job_queued_while_a_batch_waits_on_redis_goes_out_at_once_up_to_max_in_flight(
    own_redis: RedisServer, max_in_flight: int
) -> None:
    redis = Redis.from_url(own_redis.url)
    queue = JobQueue(redis, QUEUE, max_in_flight=max_in_flight)
    await redis.execute_command("CLIENT", "PAUSE", 500, "WRITE")  # every batch waits on Redis
    first = asyncio.create_task(queue.enqueue(Job("f", job_id="first")))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(queue.enqueue(Job("f", job_id="second")))
    await asyncio.sleep(0.1)
    # The test's own client and one connection a batch on the wire.
    connected = len(await redis.client_list())
    assert await asyncio.gather(first, second) == [True, True]
    await queue.aclose()
    await redis.aclose()
    assert connected == 1 + max_in_flight


async def test_closing_the_queue_gives_its_connections_back(redis_client: Redis) -> None:
    queue = JobQueue(redis_client, QUEUE)
    await queue.enqueue_many([Job("f", job_id=f"j{i}") for i in range(3)])
    await queue.aclose()
    pool = redis_client.connection_pool
    assert pool._in_use_connections == set()  # redis-py counts them only there
    # The queue bounds its round trips itself while it holds a connection; given back, each has the
    # client's own socket timeout again.
    timeouts = {connection.socket_timeout for connection in pool._available_connections}
    assert timeouts == {pool.connection_kwargs.get("socket_timeout")}


async def test_a_redis_that_does_not_answer_fails_the_batch_within_the_queue_timeout(
    own_redis: RedisServer,
) -> None:
    redis = Redis.from_url(own_redis.url, socket_timeout=30)  # far longer than the queue's own
    queue = JobQueue(redis, QUEUE, timeout=0.3)
    await queue.enqueue(Job("f", job_id="before"))  # the queue now holds a connection
    await redis.execute_command("CLIENT", "PAUSE", 1500, "WRITE")
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await queue.enqueue(Job("f", job_id="stuck"))
    waited = asyncio.get_running_loop().time() - started
    await redis.execute_command("CLIENT", "UNPAUSE")
    # The timed-out connection was dropped mid-reply; the next batch starts on a fresh one.
    assert await queue.enqueue(Job("f", job_id="after")) is True
    await queue.aclose()
    await redis.aclose()
    assert waited < 1.0


async def test_queue_recovers_when_redis_forgets_the_script(redis_client: Redis) -> None:
    queue = JobQueue(redis_client, QUEUE)
    await queue.enqueue(Job("f", job_id="before"))
    await redis_client.script_flush()
    assert await queue.enqueue(Job("f", job_id="after")) is True
    assert await redis_client.zcard(QUEUE) == 2


async def test_deferred_job_is_scored_in_the_future(redis_client: Redis) -> None:
    await JobQueue(redis_client, QUEUE).enqueue(Job("f", job_id="later", defer_seconds=60))
    [(_, score)] = await redis_client.zrange(QUEUE, 0, -1, withscores=True)
    now_ms = (await redis_client.time())[0] * 1000
    assert score > now_ms + 55_000


async def test_every_caller_of_a_failed_batch_gets_the_error() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    queue = JobQueue(unreachable, QUEUE, timeout=1)
    results = await asyncio.gather(
        *(queue.enqueue(Job("f", job_id=f"j{i}")) for i in range(5)), return_exceptions=True
    )
    await unreachable.aclose()
    assert all(isinstance(result, Exception) for result in results)


async def test_job_id_with_a_space_is_refused(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="without spaces"):
        await JobQueue(redis_client, QUEUE).enqueue(Job("f", job_id="a b"))
