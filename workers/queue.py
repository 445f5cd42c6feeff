"""The job queue: our one way to put work on Redis for the arq workers.

It writes exactly the keys arq's own ``enqueue_job`` writes (``arq:job:{id}`` with the encoded job, and
the id in the queue's sorted set), with the same rule that a job id already queued, running or holding
a result is not queued again. Two differences make it fast:

- One Lua script a job does the existence check and both writes atomically, in one round trip,
  instead of arq's WATCH / EXISTS / MULTI / EXEC.
- Enqueues that are in flight together are *group committed*: whatever arrives while one pipeline is
  on the wire goes out in the next one, so under load one Redis round trip carries many jobs, and
  each caller still resumes only once Redis has acknowledged its own job.

Jobs are encoded as JSON, not pickle: whoever can write to Redis must not be able to run code in a
worker by planting a job.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from redis.asyncio import Redis

# Same as arq: a job key lives a day past the time it was due.
EXPIRES_EXTRA_MS = 86_400_000

# KEYS: job key, result key, queue. ARGV: encoded job, expiry ms, job id, score.
_ENQUEUE_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('PSETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""


def serialize(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a job must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Job:
    """A call to a worker function, by name, with JSON-compatible arguments."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    defer_seconds: float = 0.0

    def encode(self, enqueue_time_ms: int) -> bytes:
        return serialize_job(
            self.function, self.args, self.kwargs, None, enqueue_time_ms, serializer=serialize
        )


class JobQueue:
    """Enqueues jobs for arq workers, batching concurrent callers into one Redis pipeline."""

    def __init__(self, redis: Redis, queue_name: str, *, max_batch: int = 1000) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._max_batch = max_batch
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def enqueue(self, job: Job) -> bool:
        """Queue `job`; True if queued now, False if a job with its id is already queued or done.

        Returns only after Redis has acknowledged the write; raises the Redis error if it failed.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((self._script_call(job), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_pending())
        return await future

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        return list(await asyncio.gather(*(self.enqueue(job) for job in jobs)))

    async def depth(self) -> int:
        """Jobs waiting in the queue (due now or deferred)."""
        return int(await self.redis.zcard(self.queue_name))

    def _script_call(self, job: Job) -> tuple[Any, ...]:
        now_ms = int(time.time() * 1000)
        job_id = job.job_id or uuid.uuid4().hex
        defer_ms = int(job.defer_seconds * 1000)
        return (
            _ENQUEUE_SCRIPT,
            3,
            job_key_prefix + job_id,
            result_key_prefix + job_id,
            self.queue_name,
            job.encode(now_ms),
            defer_ms + EXPIRES_EXTRA_MS,
            job_id,
            now_ms + defer_ms,
        )

    async def _flush_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                pipe = self.redis.pipeline(transaction=False)
                for call, _ in batch:
                    pipe.eval(*call)
                outcomes = await pipe.execute()
            except Exception as exc:  # every caller in the batch gets the failure: none is lost silently
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), queued in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(bool(queued))

    async def aclose(self) -> None:
        """Let the jobs already handed over reach Redis."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)


def redis_client(url: str, *, timeout: float) -> Redis:
    """A Redis client whose every call gives up after `timeout` seconds instead of hanging."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
    )
    return client
