"""One rate limiter for every worker on every machine, in Redis.

A permit is taken from every limit that applies to a request (API key, token, and for `/1/members/`
paths the members limit) atomically, in one Lua script, on Redis's clock. Each limit is a sliding log
(a sorted set of permits), so the count in any window that ends now is exact. A permit is stamped when
granted and stamped again once its response is back: Trello counts a request when it arrives, which is
after the grant and before the response, so a window measured from the response can never be shorter
than Trello's. The re-stamp rides with the process's next request for a permit (one round trip for
both), or goes in a batch soon after when no request comes. With no permit to give, the script says how
long to wait and the caller sleeps that long.

Two priorities: work driven by events may use the whole limit. Bulk (resync) work is paced at the
limit's rate and borrows the reserve it leaves to events while no event caller needs it, so a resync
alone runs at the limit; once an event caller finds no free slot, bulk leaves the reserve to events for
a window, and pacing frees a slot for that caller within about one spacing (window / limit). A bulk
caller that has waited past `bulk_max_wait` asks as an event caller, so neither starves the other.

A 429 from Trello (other clients share the key) sets a pause every worker honours, growing
exponentially with jitter while 429s keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
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

# KEYS[1]: the pause key; KEYS[2]: "an event caller had to wait" (set for one window);
# KEYS[3..]: one sorted set a limit (beside each, "<key>:bulk-next": when its next bulk permit may start).
# ARGV[1]: the permit's id; ARGV[2]: 1 for bulk, 0 for an event; ARGV[3]: the longest wait, in ms, for
# which a permit is reserved rather than refused; ARGV[4]: how many permits to re-stamp (R), then for
# each its id and how many ms ago its response came; then for each limit: its maximum, the reserve bulk
# leaves to events once an event caller had to wait, its window in ms.
# Re-stamps first (they count from their responses' moments), then grants the permit, starting now
# or at the moment a slot frees (a reservation: the caller sleeps till then and need not ask again), or
# says how long to wait. Returns {1, ms until the permit's start} or {0, ms to wait before asking again}.
ACQUIRE_SCRIPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local reserve_ahead = tonumber(ARGV[3])
local restamps = tonumber(ARGV[4])
local first_limit = 5 + 2 * restamps
for r = 5, 4 + 2 * restamps, 2 do
  for i = 3, #KEYS do
    redis.call('ZADD', KEYS[i], 'XX', 'GT', now - tonumber(ARGV[r + 1]), ARGV[r])
  end
end
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then
  return {0, paused}
end
local bulk = ARGV[2] == '1'
local events_waited = redis.call('EXISTS', KEYS[2]) == 1
local start = now
local maxima = {}
local paced = {}
for i = 3, #KEYS do
  local a = first_limit + 3 * (i - 3)
  local maximum = tonumber(ARGV[a])
  if bulk then
    if events_waited then
      maximum = math.max(1, maximum - tonumber(ARGV[a + 1]))
    end
    paced[i] = math.max(now, tonumber(redis.call('GET', KEYS[i] .. ':bulk-next') or 0))
    start = math.max(start, paced[i])
  end
  maxima[i] = maximum
end
local wait = 0
for i = 3, #KEYS do
  local a = first_limit + 3 * (i - 3)
  local maximum = maxima[i]
  local window = tonumber(ARGV[a + 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  -- Permits counted in the window that ends at the start: the ones reserved ahead included.
  local used = redis.call('ZCOUNT', KEYS[i], '(' .. (start - window), '+inf')
  if used >= maximum then
    local oldest = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. (start - window), '+inf', 'WITHSCORES',
                              'LIMIT', used - maximum, 1)
    local free_at = tonumber(oldest[2]) + window
    if free_at - now > wait then
      wait = free_at - now
    end
  end
end
if wait > 0 and not bulk then
  -- Bulk work had borrowed the reserve: it leaves it to events again for a window.
  local longest = 0
  for i = 3, #KEYS do
    longest = math.max(longest, tonumber(ARGV[first_limit + 3 * (i - 3) + 2]))
  end
  redis.call('SET', KEYS[2], 1, 'PX', longest)
end
if wait > reserve_ahead then
  return {0, wait}
end
-- A slot frees within the reservation horizon: the permit starts then. Every limit's count in the
-- window ending at that moment leaves it room (the slot it waits for is the one that frees).
start = math.max(start, now + wait)
for i = 3, #KEYS do
  local a = first_limit + 3 * (i - 3)
  local window = tonumber(ARGV[a + 2])
  redis.call('ZADD', KEYS[i], start, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], window * 2)
  if bulk then
    -- Bulk work is paced, a permit every window / maximum of each limit: it runs at the limit's rate
    -- without taking a window's worth at once, so that a slot frees for an event caller within one
    -- spacing of its asking. The pace keeps its own beat: a permit the window held back does not
    -- push the next ones later (the window, not the pace, is then what binds).
    local spacing = window / maxima[i]
    redis.call('SET', KEYS[i] .. ':bulk-next', math.floor(paced[i] + spacing), 'PX', window)
  end
end
return {1, start - now}
"""

# KEYS: the limits' sorted sets. ARGV: for each permit, its id and how many ms ago its response came.
# Re-stamps each at that moment on Redis's clock (never earlier than it was).
COMPLETE_SCRIPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
for i = 1, #KEYS do
  for a = 1, #ARGV, 2 do
    redis.call('ZADD', KEYS[i], 'XX', 'GT', now - tonumber(ARGV[a + 1]), ARGV[a])
  end
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
    restamp_within: float = 1.0  # longest a response's re-stamp waits for a permit to ride with
    reserve_ahead: float = 1.0  # a permit whose slot frees within this is reserved, not refused
    pause_base: float = 1.0  # first pause after a 429, seconds
    pause_cap: float = 60.0


@dataclass(frozen=True)
class LimitUse:
    name: str
    used: int  # permits in the window that ends now
    maximum: int
    window: float


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
        self.redis = redis
        self._acquire = redis.register_script(ACQUIRE_SCRIPT)
        self._complete = redis.register_script(COMPLETE_SCRIPT)
        self._pause = redis.register_script(PAUSE_SCRIPT)
        self._ids = itertools.count()
        self._prefix = f"{os.getpid()}:{os.urandom(4).hex()}:"
        # One caller of each priority at a time asks Redis; the others wait here, not in Redis.
        self._gates = {p: asyncio.Lock() for p in Priority}
        # Permits whose responses came back (and when, on our clock), by their limits' keys, waiting to
        # be re-stamped.
        self._restamps: dict[tuple[str, ...], list[tuple[str, float]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._known: dict[tuple[str, ...], list[Limit]] = {}  # every set of limits asked for, for `use`

    @property
    def events_key(self) -> str:
        return f"{self.namespace}:rl:events"

    def bucket(self, limit: Limit) -> str:
        return f"{self.namespace}:rl:{limit.name}"

    @property
    def pause_key(self) -> str:
        return f"{self.namespace}:rl:pause"

    @asynccontextmanager
    async def permit(self, limits: list[Limit], priority: Priority = Priority.EVENT) -> AsyncIterator[None]:
        """Hold a permit of every limit for one request; the request runs inside the block."""
        permit_id = self._prefix + str(next(self._ids))
        keys = tuple(self.bucket(limit) for limit in limits)
        self._known[keys] = limits
        started = time.monotonic()
        async with self._gates[priority]:
            while True:
                ask_as = priority
                if priority is Priority.BULK and time.monotonic() - started >= self.policy.bulk_max_wait:
                    ask_as = Priority.EVENT
                granted, wait = await self._ask(permit_id, keys, limits, ask_as)
                if granted:
                    await asyncio.sleep(wait)  # a reserved slot, or a bulk permit's paced start
                    break
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
            self._restamp_soon(keys, permit_id, min(limit.window for limit in limits))

    async def _ask(
        self, permit_id: str, keys: tuple[str, ...], limits: list[Limit], priority: Priority
    ) -> tuple[bool, float]:
        """One round trip: the re-stamps waiting for these limits, then the permit. Granted, and the
        seconds until it starts; or not, and the seconds to wait before asking again."""
        restamps = self._restamps.pop(keys, [])
        ahead = int(self.policy.reserve_ahead * 1000)
        args: list[str | int | float] = [permit_id, int(priority is Priority.BULK), ahead, len(restamps)]
        args += ages(restamps)
        for limit in limits:
            args += [
                self._allowance(limit),
                int(limit.maximum * self.policy.bulk_reserve),
                int(limit.window * 1000),
            ]
        self.stats.round_trips += 1
        try:
            granted, wait_ms = await self._acquire(keys=[self.pause_key, self.events_key, *keys], args=args)
        except BaseException:
            self._restamps.setdefault(keys, []).extend(restamps)  # for the next round trip
            raise
        return bool(granted), int(wait_ms) / 1000

    def _restamp_soon(self, keys: tuple[str, ...], permit_id: str, window: float) -> None:
        """The response is in: the permit is to count from this moment. The next permit asked for the
        same limits carries the re-stamp (no round trip of its own); if none comes soon, a flush sends
        every waiting re-stamp in one call. Either way it says how long ago the response came, so that
        the stamp is the response's moment on Redis's clock, not the moment the re-stamp travelled. Soon
        is well within a window: a re-stamp only matters before the grant-time stamp leaves the window."""
        self._restamps.setdefault(keys, []).append((permit_id, time.monotonic()))
        if self._flusher is None or self._flusher.done():
            delay = min(self.policy.restamp_within, window / 10)
            self._flusher = asyncio.get_running_loop().create_task(self._flush_after(delay))

    async def _flush_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.flush()

    async def flush(self) -> None:
        """Send every waiting re-stamp now: one call for each set of limits."""
        while self._restamps:
            keys, permits = self._restamps.popitem()
            self.stats.round_trips += 1
            try:
                await self._complete(keys=list(keys), args=ages(permits))
            except Exception as exc:  # the grant-time stamps stay: early by one latency, never lost
                log.warning("permit completions not recorded", permits=len(permits), error=type(exc).__name__)

    async def aclose(self) -> None:
        """Record the completions still waiting, before the process goes."""
        if self._flusher is not None:
            self._flusher.cancel()
        with contextlib.suppress(TimeoutError):  # a Redis that does not answer must not hold up the exit
            async with asyncio.timeout(2.0):
                await self.flush()

    def _allowance(self, limit: Limit) -> int:
        """What callers may use of a limit: all of it but the safety margin. Bulk callers also leave
        `bulk_reserve` of it once an event caller had to wait (the script knows whether one did)."""
        return max(1, limit.maximum - self.policy.safety_margin)

    async def use(self) -> list[LimitUse]:
        """Each limit this process has asked permits of, and how many permits the window ending now holds
        (those of every process), on Redis's clock: what the console shows as the limiter's use."""
        limits = {limit.name: limit for known in self._known.values() for limit in known}
        if not limits:
            return []
        seconds, micros = await self.redis.time()
        now = seconds * 1000 + micros // 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for limit in limits.values():
                pipe.zcount(self.bucket(limit), f"({now - int(limit.window * 1000)}", "+inf")
            counts = await pipe.execute()
        return [
            LimitUse(limit.name, int(used), limit.maximum, limit.window)
            for limit, used in zip(limits.values(), counts, strict=True)
        ]

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


def ages(permits: list[tuple[str, float]]) -> list[str | int | float]:
    """Each permit's id and how many ms ago its response came, as the scripts take them."""
    now = time.monotonic()
    return [item for permit_id, done in permits for item in (permit_id, max(0, int((now - done) * 1000)))]


def secret_digest(value: str) -> str:
    """A stable short name for a secret (an API key, a token), so that Redis keys never hold it."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]
