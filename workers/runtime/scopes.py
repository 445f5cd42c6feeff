"""Work-queue semantics for reconciles, per scope (a board, a workspace), held in Redis.

The Kubernetes work-queue rule: while a scope's reconcile is queued, marking it again adds nothing; a
scope marked while its reconcile runs is reconciled once more after it; no mark is lost. arq's job-id
dedupe cannot say "marked while running" (the job's key exists until it ends), so the scope keeps its
own state: `queued` or `running`, and a `dirty` flag for marks that arrive during a run.

The state carries a lifetime a little over a reconcile's longest run, so that a scope whose job was lost
(its enqueue failed, its worker died for good) is not stuck: the next mark queues it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from jobs import builders
from jobs.builders import ScopeKind
from jobs.queue import JobQueue

# KEYS: state, dirty. ARGV: state lifetime ms. Returns 1 when the caller must queue a reconcile.
MARK = """
local state = redis.call('GET', KEYS[1])
if not state then
  redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
  return 1
end
if state == 'running' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
end
return 0
"""

# KEYS: state, dirty. ARGV: state lifetime ms. The run starts: marks from now on ask for another run.
START = """
redis.call('SET', KEYS[1], 'running', 'PX', ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: state, dirty. ARGV: state lifetime ms. Returns 1 when a mark arrived during the run.
FINISH = """
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""


# KEYS: state, dirty. ARGV: state lifetime ms. The run failed and will be tried again: the retry is the
# scope's queued reconcile, so further marks add nothing (and no second reconcile runs beside it).
RETRY = """
redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


@dataclass(frozen=True)
class Scope:
    """What one reconcile covers: a board or a workspace, by its Trello id."""

    kind: ScopeKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class Scopes:
    def __init__(
        self, redis: Redis, queue: JobQueue, *, debounce: float = 1.0, lifetime: float = 600.0
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.debounce = debounce
        self._lifetime_ms = int(lifetime * 1000)
        self._mark = redis.register_script(MARK)
        self._start = redis.register_script(START)
        self._finish = redis.register_script(FINISH)
        self._retry = redis.register_script(RETRY)

    def _keys(self, scope: Scope) -> list[str]:
        return [f"trellis:scope:{scope}:state", f"trellis:scope:{scope}:dirty"]

    async def mark(self, scope: Scope, *, reason: str, bulk: bool = False) -> bool:
        """Ask for the scope to be reconciled; True when this call queued the reconcile. `bulk`: the
        reconcile calls Trello at bulk priority (a resync), unless an event marked it first."""
        if int(await self._mark(keys=self._keys(scope), args=[self._lifetime_ms])):
            await self.queue.enqueue(
                builders.reconcile(scope.kind, scope.id, reason, defer=self.debounce, bulk=bulk)
            )
            return True
        return False

    async def pending(self, scopes: list[Scope]) -> list[bool]:
        """For each scope, whether a reconcile of it is still queued or running."""
        keys = [self._keys(scope)[0] for scope in scopes]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            return [bool(n) for n in await pipe.execute()]

    async def started(self, scope: Scope) -> None:
        await self._start(keys=self._keys(scope), args=[self._lifetime_ms])

    async def retrying(self, scope: Scope) -> None:
        """The run failed and its job will run again: the scope stays queued until then."""
        await self._retry(keys=self._keys(scope), args=[self._lifetime_ms])

    async def finished(self, scope: Scope) -> bool:
        """The run is over; True when it was marked meanwhile and another run has been queued."""
        if int(await self._finish(keys=self._keys(scope), args=[self._lifetime_ms])):
            await self.queue.enqueue(
                builders.reconcile(scope.kind, scope.id, "marked while its reconcile ran")
            )
            return True
        return False
