"""One rate limiter for every worker on every machine, in Redis.

A permit is taken from every limit that applies to a request (API key, token, and for `/1/members/`
paths the members limit) atomically, in one Lua script, on Redis's clock. Each limit is a sliding log
(a sorted set of permits), so the count in any window that ends now is exact. A permit is stamped when
granted and stamped again when its response comes back: Trello counts a request when it arrives, which
is after the grant and before the response, so a window measured from the response can never be
shorter than Trello's. With no permit to give, the script says how long to wait and the caller sleeps
that long.

Two priorities: work driven by events may use the whole limit, bulk (resync) work leaves a reserve for
events, and a bulk caller that has waited past `bulk_max_wait` asks as an event caller, so neither
starves the other for good. A 429 from Trello (other clients share the key) sets a pause every worker
honours, growing exponentially with jitter while 429s keep coming.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import itertools
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from redis.asyncio import Redis

from workers import metrics

log = structlog.get_logger("workers.limiter")

# KEYS[1]: the pause key; KEYS[2..]: one sorted set a limit.
# ARGV[1]: the permit's id; then for each limit: its maximum for this caller, its window in ms.
# Returns 0 and takes the permit from every limit, or the ms to wait and takes nothing.
ACQUIRE_SCRIPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then
  return paused
end
local wait = 0
for i = 2, #KEYS do
  local maximum = tonumber(ARGV[2 * i - 2])
  local window = tonumber(ARGV[2 * i - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local used = redis.call('ZCARD', KEYS[i])
  if used >= maximum then
    -- The permit that frees one for us: the (used - maximum + 1)th oldest.
    local oldest = redis.call('ZRANGE', KEYS[i], used - maximum, used - maximum, 'WITHSCORES')
    local free_at = tonumber(oldest[2]) + window
    if free_at - now > wait then
      wait = free_at - now
    end
  end
end
if wait > 0 then
  return math.max(wait, 1)
end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i - 1]) * 2)
end
return 0
"""

# KEYS: the limits' sorted sets. ARGV[1]: the permit's id. Re-stamps it with Redis's clock now.
COMPLETE_SCRIPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1])
end
return now
"""

# KEYS[1]: pause key, KEYS[2]: the 429 streak counter.
# ARGV: base ms, cap ms, streak lifetime ms, a random fraction in [0, 1) for the jitter.
PAUSE_SCRIPT = """
local streak = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local ceiling = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) * 2 ^ (streak - 1))
local pause = math.max(1, math.floor(ceiling / 2 + tonumber(ARGV[4]) * ceiling / 2))
local current = redis.call('PTTL', KEYS[1])
if pause > current then
  redis.call('SET', KEYS[1], streak, 'PX', pause)
end
return pause
"""


class Priority(enum.IntEnum):
    EVENT = 0
    BULK = 1


@dataclass(frozen=True)
class Limit:
    """At most `maximum` permits in any `window` seconds, for one bucket (a key, a token, a path)."""

    name: str
    maximum: int
    window: float


@dataclass(frozen=True)
class LimiterPolicy:
    safety_margin: int = 0  # permits of every window left unused
    bulk_reserve: float = 0.2  # share of every limit that bulk work leaves to events
    bulk_max_wait: float = 30.0  # a bulk caller that waited this long asks as an event caller
    pause_base: float = 1.0  # first pause after a 429, seconds
    pause_cap: float = 60.0


@dataclass
class LimiterStats:
    permits: int = 0
    round_trips: int = 0
    # The latest waits by priority, bounded: a worker runs for months.
    waits: dict[Priority, deque[float]] = field(
        default_factory=lambda: {p: deque(maxlen=10_000) for p in Priority}
    )


class Limiter:
    """Permits for requests, shared through Redis by every process that uses the same `namespace`."""

    def __init__(self, redis: Redis, namespace: str, policy: LimiterPolicy | None = None) -> None:
        self.namespace = namespace
        self.policy = policy or LimiterPolicy()
        self.stats = LimiterStats()
        self._acquire = redis.register_script(ACQUIRE_SCRIPT)
        self._complete = redis.register_script(COMPLETE_SCRIPT)
        self._pause = redis.register_script(PAUSE_SCRIPT)
        self._ids = itertools.count()
        self._prefix = f"{os.getpid()}:{os.urandom(4).hex()}:"
        # One caller of each priority at a time asks Redis; the others wait here, not in Redis.
        self._gates = {p: asyncio.Lock() for p in Priority}

    def bucket(self, limit: Limit) -> str:
        return f"{self.namespace}:rl:{limit.name}"

    @property
    def pause_key(self) -> str:
        return f"{self.namespace}:rl:pause"

    @asynccontextmanager
    async def permit(self, limits: list[Limit], priority: Priority = Priority.EVENT) -> AsyncIterator[None]:
        """Hold a permit of every limit for one request; the request runs inside the block."""
        permit_id = self._prefix + str(next(self._ids))
        keys = [self.bucket(limit) for limit in limits]
        started = time.monotonic()
        async with self._gates[priority]:
            while True:
                ask_as = priority
                if priority is Priority.BULK and time.monotonic() - started >= self.policy.bulk_max_wait:
                    ask_as = Priority.EVENT
                args: list[str | int | float] = [permit_id]
                for limit in limits:
                    args += [self._allowance(limit, ask_as), int(limit.window * 1000)]
                self.stats.round_trips += 1
                wait_ms = int(await self._acquire(keys=[self.pause_key, *keys], args=args))
                if wait_ms == 0:
                    break
                wait = wait_ms / 1000
                if ask_as is Priority.BULK:  # wake no later than the moment it may ask as an event
                    wait = min(wait, max(0.001, self.policy.bulk_max_wait - (time.monotonic() - started)))
                await asyncio.sleep(wait)
        waited = time.monotonic() - started
        self.stats.permits += 1
        self.stats.waits[priority].append(waited)
        metrics.LIMITER_WAIT_SECONDS.labels(priority.name.lower()).observe(waited)
        try:
            yield
        finally:
            self.stats.round_trips += 1
            try:
                await self._complete(keys=keys, args=[permit_id])
            except Exception as exc:  # the grant-time stamp stays: early by one latency, never lost
                log.warning("permit completion not recorded", error=type(exc).__name__)

    def _allowance(self, limit: Limit, priority: Priority) -> int:
        allowance = limit.maximum - self.policy.safety_margin
        if priority is Priority.BULK:
            allowance -= int(limit.maximum * self.policy.bulk_reserve)
        return max(1, allowance)

    async def pause_for_429(self) -> float:
        """Trello said 429: every worker holds off, longer each time it happens again soon after."""
        pause_ms = await self._pause(
            keys=[self.pause_key, self.pause_key + ":streak"],
            args=[
                int(self.policy.pause_base * 1000),
                int(self.policy.pause_cap * 1000),
                int(self.policy.pause_cap * 2000),
                random.random(),
            ],
        )
        return int(pause_ms) / 1000


def secret_digest(value: str) -> str:
    """A stable short name for a secret (an API key, a token), so that Redis keys never hold it."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
