"""The job queue: our one way to put work on Redis for the arq workers.

It writes exactly the keys arq's own ``enqueue_job`` writes (``arq:job:{id}`` with the encoded job, and
the id in the queue's sorted set), with the same rule that a job id already queued, running or holding
a result is not queued again. Two differences make it fast:

- A Lua script does, for each job, the existence check and both writes atomically, instead of arq's
  WATCH / EXISTS / MULTI / EXEC round trips.
- Enqueues that are in flight together are *group committed*: whatever arrives while the script calls
  already sent are on the wire goes out in the next one, so under load one Redis round trip carries many
  jobs, and each caller still resumes only once Redis has acknowledged its own job. Two batches may be
  on the wire at once, so that the jobs arriving behind a batch wait for a connection, not for Redis.

Jobs are encoded as JSON, not pickle: whoever can write to Redis must not be able to run code in a
worker by planting a job.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import hiredis
import orjson
from arq.constants import job_key_prefix, result_key_prefix
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, RedisError, ResponseError

# Same as arq: a job key lives a day past the time it was due.
EXPIRES_EXTRA_MS = 86_400_000

# Enqueues a batch. KEYS[1]: the queue. ARGV: two a job, "<id> <key lifetime ms> <score>" and its encoding.
# Per job it is exactly what arq's enqueue_job does, atomically: nothing if the job or its result exists.
# KEYS[2], when given, is a counter the batch always bumps: a WAIT after the script then covers the jobs
# it found already there too (WAIT counts replicas that have the connection's own last write, and Redis
# replicates in order), so "already queued" is acknowledged only once a replica has that job as well.
# Job keys are built here from arq's fixed prefixes rather than passed in KEYS, which halves what each
# job costs to send; that only matters to Redis Cluster, which arq does not support.
ENQUEUE_SCRIPT = (
    """
local queued = {}
for j = 1, #ARGV, 2 do
  local id, lifetime, score = string.match(ARGV[j], '^(%S+) (%d+) (%d+)$')
  local job_key = '"""
    + job_key_prefix
    + """' .. id
  if redis.call('EXISTS', job_key, '"""
    + result_key_prefix
    + """' .. id) > 0 then
    queued[#queued + 1] = 0
  else
    redis.call('PSETEX', job_key, lifetime, ARGV[j + 1])
    redis.call('ZADD', KEYS[1], score, id)
    queued[#queued + 1] = 1
  end
end
if KEYS[2] then
  redis.call('INCR', KEYS[2])
end
return queued
"""
)
ENQUEUE_SHA = hashlib.sha1(ENQUEUE_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)


def serialize(data: Any) -> bytes:
    return orjson.dumps(data)


def deserialize(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a job must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class RawJSON:
    """A job argument that is already encoded JSON (a webhook body, say), embedded without re-encoding."""

    encoded: bytes


def _encode_argument(value: Any) -> bytes:
    return value.encoded if isinstance(value, RawJSON) else serialize(value)


@dataclass(frozen=True, slots=True)
class Job:
    """A call to a worker function, by name, with JSON-compatible arguments."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    defer_seconds: float = 0.0

    def encode(self, enqueue_time_ms: int) -> bytes:
        """The job as arq's `serialize_job` stores it, key for key, assembled around arguments that are
        already JSON (`RawJSON`) so that they are not decoded and encoded again."""
        args = b",".join(_encode_argument(arg) for arg in self.args)
        return b'{"t":null,"f":%s,"a":[%s],"k":%s,"et":%d}' % (
            serialize(self.function),
            args,
            serialize(self.kwargs),
            enqueue_time_ms,
        )


class _Prepared(NamedTuple):
    """A job ready for the enqueue script: "<id> <lifetime ms> <score>" and its encoding."""

    header: str
    encoded: bytes


class NotReplicated(RedisError):
    """A batch reached fewer replicas than required in the time allowed: a failover could lose it."""


class JobQueue:
    """Enqueues jobs for arq workers, batching concurrent callers into one script call, with up to
    `max_in_flight` batches sent and not yet answered.

    With `min_replicas` > 0 a batch counts as written only once Redis's WAIT confirms that many replicas
    have it, so that a job acknowledged to its caller survives the primary's failover. WAIT goes in the
    same round trip as the batch, so its cost is shared by every job in the batch.
    """

    def __init__(
        self,
        redis: Redis,
        queue_name: str,
        *,
        timeout: float = 5.0,
        max_batch: int = 500,
        max_in_flight: int = 2,
        min_replicas: int = 0,
    ) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.timeout = timeout
        self.min_replicas = min_replicas
        self._replicated_mark = f"{queue_name}:replicated-batches"
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[_Prepared, asyncio.Future[bool]]] = []
        self._gathering = False  # a flush is due to take what is pending at its next turn of the loop
        self._in_flight = 0
        self._flushes: set[asyncio.Task[None]] = set()
        self._idle_connections: list[AbstractConnection] = []  # taken from the client's pool, kept

    async def enqueue(self, job: Job) -> bool:
        """Queue `job`; True if queued now, False if a job with its id is already queued or done.

        Returns only after Redis has acknowledged the write (and `min_replicas` replicas have it); raises
        the Redis error if it failed, `NotReplicated` if too few replicas confirmed it, and TimeoutError
        if Redis did not answer within `timeout` (the caller may wait for the batch ahead of its own, so
        up to twice that). Whether a job that failed was written is unknown: retrying it under the same
        id is always safe.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((self._prepare(job), future))
        self._start_flush()
        return await future

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        return list(await asyncio.gather(*(self.enqueue(job) for job in jobs)))

    def _prepare(self, job: Job) -> _Prepared:
        now_ms = int(time.time() * 1000)
        job_id = job.job_id or uuid.uuid4().hex
        defer_ms = int(job.defer_seconds * 1000)
        if " " in job_id:
            raise ValueError(f"job id {job_id!r} must be without spaces")
        header = f"{job_id} {defer_ms + EXPIRES_EXTRA_MS} {now_ms + defer_ms}"
        return _Prepared(header, job.encode(now_ms))

    def _start_flush(self) -> None:
        """Start a flush, unless one is already gathering the pending jobs or enough are in flight (one
        of them starts the next when it ends). It runs at the loop's next turn, so it takes every job
        queued before then."""
        if self._pending and not self._gathering and self._in_flight < self._max_in_flight:
            self._gathering = True
            flush = asyncio.create_task(self._flush())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        self._gathering = False
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        self._in_flight += 1
        connection = self._idle_connections.pop() if self._idle_connections else None
        try:
            async with asyncio.timeout(self.timeout):
                if connection is None:
                    connection = await self._take_connection()
                outcomes = await self._write(connection, [job for job, _ in batch])
        except Exception as exc:  # every caller in the batch gets the failure: none is lost silently
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), queued in zip(batch, outcomes, strict=True):
                if not future.done():  # else the caller gave up waiting; the job is stored all the same
                    future.set_result(bool(queued))
        finally:
            # After an error redis-py has dropped the connection's socket; it reconnects on next use.
            if connection is not None:
                self._idle_connections.append(connection)
            self._in_flight -= 1
            self._start_flush()

    async def _write(self, connection: AbstractConnection, jobs: list[_Prepared]) -> list[int]:
        """Run the enqueue script over the batch, with WAIT after it when replicas must confirm: one
        round trip; a 0 or 1 per job."""
        args: list[str | bytes] = []
        for job in jobs:
            args.append(job.header)
            args.append(job.encoded)
        if not self.min_replicas:
            (outcomes,) = await self._evalsha(connection, [self.queue_name], args)
            return [int(queued) for queued in outcomes]
        # WAIT counts the replicas that have every write made *on its connection*: it travels on the
        # same one, right after the script. It gives up a little before our own timeout, so that a
        # lagging replica is told apart from a Redis that does not answer.
        wait_ms = max(1, int(self.timeout * 750))
        keys = [self.queue_name, self._replicated_mark]
        outcomes, replicas = await self._evalsha(connection, keys, args, ("WAIT", self.min_replicas, wait_ms))
        if int(replicas) < self.min_replicas:
            raise NotReplicated(f"{replicas} of {self.min_replicas} replica(s) confirmed within {wait_ms} ms")
        return [int(queued) for queued in outcomes]

    async def _evalsha(
        self,
        connection: AbstractConnection,
        keys: list[str],
        args: list[str | bytes],
        *after: tuple[Any, ...],
    ) -> list[Any]:
        """The enqueue script's reply, then each command of `after`'s, all sent in one write; the
        script is loaded again first if Redis has forgotten it (a restarted or new primary).

        This is the receiver's hottest call, so it skips redis-py's per-command machinery (a pool
        checkout, the retry wrapper, packing in Python): the queue keeps connections of the client's
        pool, one for each batch in flight, packs with hiredis, and sends and reads through redis-py's
        own connection, which still connects, authenticates, follows Sentinel, and drops its socket on
        any error or cancellation so that the next batch starts on a fresh one.
        """
        commands = [("EVALSHA", ENQUEUE_SHA, len(keys), *keys, *args), *after]
        for attempt in range(2):
            replies = await self._round_trip(connection, commands)
            if isinstance(replies[0], NoScriptError) and attempt == 0:
                await self._round_trip(connection, [("SCRIPT", "LOAD", ENQUEUE_SCRIPT)])
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies
        raise AssertionError("unreachable: the script was loaded before the second attempt")

    @staticmethod
    async def _round_trip(connection: AbstractConnection, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` in one write and read a reply each; an error reply is returned, not raised,
        so that every reply is read and the connection stays in step."""
        await connection.send_packed_command(b"".join(hiredis.pack_command(c) for c in commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def _take_connection(self) -> AbstractConnection:
        """A connection of the client's pool, kept for the queue's round trips, without redis-py's own
        socket timeout: each round trip is bounded by the queue's `timeout` already, and redis-py's would
        cost a task and two more timers a batch (a fifth of a batch's CPU, measured)."""
        connection: AbstractConnection = await self.redis.connection_pool.get_connection()
        connection.socket_timeout = None
        return connection

    async def aclose(self) -> None:
        """Let the jobs already handed over reach Redis, then give the connections back as they came."""
        while self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        pool = self.redis.connection_pool
        while self._idle_connections:
            connection = self._idle_connections.pop()
            connection.socket_timeout = pool.connection_kwargs.get("socket_timeout")
            await pool.release(connection)
