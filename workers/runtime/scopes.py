"""Work-queue semantics for reconciles, per scope (a board, a workspace), held in Redis.

The Kubernetes work-queue rule: while a scope's reconcile is queued, marking it again adds nothing; a
scope marked while its reconcile runs is reconciled once more after it; no mark is lost. arq's job-id
dedupe cannot say "marked while running" (the job's key exists until it ends), so the scope keeps its
own state: `queued` or `running`, and a `dirty` flag for marks that arrive during a run.

Two rules keep it safe whatever the backlog:

- **One run at a time, by lease.** A run holds the scope's lease (a key with its own token and a short
  lifetime) and renews it while it runs. A job that finds the lease held by another run does not run
  beside it: it is deferred and tries again. A worker that dies stops renewing; its lease lapses within
  `lease` seconds and the scope runs again (the dead worker's job is retried by arq, or the next mark
  queues one). A run that could not renew in time has lost its lease and is stopped (`LeaseLost`).
- **Coalescing is only an economy.** The `queued` state expires (`lifetime`), so that a scope whose job
  was lost is not stuck; when a backlog outlasts it, a second job may be queued, and the lease makes it
  wait its turn rather than run beside the first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from jobs import builders
from jobs.builders import ScopeKind
from jobs.queue import JobQueue

log = structlog.get_logger("workers.runtime.scopes")

# Every script takes KEYS: state, dirty, lease.

# ARGV: queued lifetime ms. Returns 1 when the caller must queue a reconcile. A scope marked `running`
# whose lease has lapsed has no live run (its worker died): it is queued again.
MARK = """
local state = redis.call('GET', KEYS[1])
if state == 'running' and redis.call('EXISTS', KEYS[3]) == 0 then
  state = false
end
if not state then
  redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
  redis.call('DEL', KEYS[2])
  return 1
end
if state == 'running' then
  redis.call('SET', KEYS[2], '1')
end
return 0
"""

# ARGV: token, lease ms. Returns 1 when the run holds the lease; 0 when another run holds it.
START = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[1], 'running')
redis.call('DEL', KEYS[2])
return 1
"""

# ARGV: token, lease ms. Returns 1 when the lease is still this run's (and now extended).
RENEW = """
if redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  return 1
end
return 0
"""

# ARGV: token, queued lifetime ms. Returns 1 when a mark arrived during the run (queue one more), 0
# when the scope is idle now, -1 when the lease was no longer this run's (nothing touched).
FINISH = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[3])
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""

# ARGV: token, queued lifetime ms. The run failed and will be tried again: the retry is the scope's
# queued reconcile, so further marks add nothing (and no second reconcile runs beside it).
RETRY = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""

# A run whose lease lapsed (its worker died, or lost Redis for longer than the lease) never finished: the
# scope is queued again, marks made during that run included. Returns 1 when the caller must queue it.
REPAIR = """
if redis.call('GET', KEYS[1]) == 'running' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[1], 'queued', 'PX', ARGV[1])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# Returns 1 when a reconcile of the scope is queued or running (a lapsed run is neither).
PENDING = """
local state = redis.call('GET', KEYS[1])
if not state then
  return 0
end
if state == 'running' and redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
return 1
"""


@dataclass(frozen=True)
class Scope:
    """What one reconcile covers: a board or a workspace, by its Trello id."""

    kind: ScopeKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


class LeaseLost(Exception):
    """A run could not renew its scope's lease in time: another run may hold the scope now, so this one
    stops (its job is tried again, and finds the scope as it is then)."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(f"the lease on {scope} lapsed while its reconcile ran")
        self.scope = scope


class Scopes:
    def __init__(
        self,
        redis: Redis,
        queue: JobQueue,
        *,
        debounce: float = 1.0,
        lifetime: float = 600.0,
        lease: float = 20.0,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.debounce = debounce
        self.lease = lease
        self._lifetime_ms = int(lifetime * 1000)
        self._lease_ms = int(lease * 1000)
        self._mark = redis.register_script(MARK)
        self._start = redis.register_script(START)
        self._renew = redis.register_script(RENEW)
        self._finish = redis.register_script(FINISH)
        self._retry = redis.register_script(RETRY)
        self._pending = redis.register_script(PENDING)
        self._repair = redis.register_script(REPAIR)

    def _keys(self, scope: Scope) -> list[str]:
        prefix = f"trellis:scope:{scope}"
        return [f"{prefix}:state", f"{prefix}:dirty", f"{prefix}:lease"]

    async def mark(self, scope: Scope, *, reason: str, bulk: bool = False) -> bool:
        """Ask for the scope to be reconciled; True when this call queued the reconcile. `bulk`: the
        reconcile calls Trello at bulk priority (a resync), unless an event marked it first."""
        if int(await self._mark(keys=self._keys(scope), args=[self._lifetime_ms])):
            await self.queue.enqueue(
                builders.reconcile(scope.kind, scope.id, reason, defer=self.debounce, bulk=bulk)
            )
            return True
        return False

    async def repair_lapsed(self) -> list[Scope]:
        """Queue again every scope whose run's lease lapsed before it finished; the scopes re-queued.
        Each worker calls it every half lease, so a dead worker's scope runs again within about 1.5
        leases, whether or not anything marks it meanwhile."""
        repaired = []
        async for key in self.redis.scan_iter(match="trellis:scope:*:state", count=500):
            name = key.decode() if isinstance(key, bytes) else str(key)
            kind, _, scope_id = name.removeprefix("trellis:scope:").removesuffix(":state").partition(":")
            if kind not in ("board", "workspace"):
                continue
            scope = Scope(builders.scope_kind(kind), scope_id)
            if int(await self._repair(keys=self._keys(scope), args=[self._lifetime_ms])):
                await self.queue.enqueue(builders.reconcile(scope.kind, scope.id, "its last run died"))
                repaired.append(scope)
        if repaired:
            log.warning("scopes whose run died queued again", scopes=[str(s) for s in repaired])
        return repaired

    async def pending(self, scopes: list[Scope]) -> list[bool]:
        """For each scope, whether a reconcile of it is still queued or running: one round trip for all
        (`trellis resync --wait` asks about every linked board twice a second)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for scope in scopes:
                await self._pending(keys=self._keys(scope), client=pipe)
            return [bool(answer) for answer in await pipe.execute()]

    async def start(self, scope: Scope, holder: str | None = None) -> str | None:
        """Take the scope's lease for a run: its token, or None when another run holds it. `holder`, the
        run's job id, is the token: a try of the job takes back the lease an earlier try of it left held
        (it failed while Redis was away, and could not hand the lease back) rather than wait for it
        to lapse."""
        token = holder or uuid.uuid4().hex
        if int(await self._start(keys=self._keys(scope), args=[token, self._lease_ms])):
            return token
        return None

    async def renew(self, scope: Scope, token: str) -> bool:
        """Extend the run's lease; False when it is no longer the run's."""
        return bool(await self._renew(keys=self._keys(scope), args=[token, self._lease_ms]))

    async def retrying(self, scope: Scope, token: str) -> None:
        """The run failed and its job will run again: the scope stays queued until then."""
        await self._retry(keys=self._keys(scope), args=[token, self._lifetime_ms])

    async def finished(self, scope: Scope, token: str) -> bool:
        """The run is over; True when it was marked meanwhile and another run has been queued. That run
        waits the debounce too: a mark during a run is most often the middle of a burst, and the rest
        of it should land before the scope is read again, not start a run of its own."""
        if int(await self._finish(keys=self._keys(scope), args=[token, self._lifetime_ms])) == 1:
            reason = "marked while its reconcile ran"
            await self.queue.enqueue(builders.reconcile(scope.kind, scope.id, reason, defer=self.debounce))
            return True
        return False

    @asynccontextmanager
    async def holding(self, scope: Scope, *, patience: float) -> AsyncIterator[None]:
        """Hold the scope for work that is not its queued reconcile (a pushed change reconciling a board):
        wait up to `patience` seconds for the lease (else `TimeoutError`, a failure that may pass), hold
        it renewed, and let marks made meanwhile queue one more run after."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while (token := await self.start(scope)) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"{scope} stayed busy for {patience:.0f} s")
            await asyncio.sleep(min(self.lease / 3, 1.0))
        try:
            async with self.renewing(scope, token):
                yield
        finally:
            await self.finished(scope, token)

    @asynccontextmanager
    async def renewing(self, scope: Scope, token: str) -> AsyncIterator[None]:
        """Renew the lease every third of its lifetime while the body runs. When the lease was lost (or
        could not be renewed before it lapsed, Redis being away), the body is cancelled and `LeaseLost`
        raised in its place: past that point another run may hold the scope."""
        loop = asyncio.get_running_loop()
        lost = asyncio.Event()

        async def renew(deadline: asyncio.Timeout) -> None:
            renewed = loop.time()
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    if await self.renew(scope, token):
                        renewed = loop.time()
                        continue
                except Exception as exc:  # Redis away for a moment: try again while the lease lasts
                    log.warning("lease not renewed", scope=str(scope), error=type(exc).__name__)
                    if loop.time() - renewed < self.lease:
                        continue
                lost.set()
                deadline.reschedule(loop.time())  # asyncio.timeout cancels the body cleanly
                return

        try:
            async with asyncio.timeout(None) as deadline:
                renewer = asyncio.create_task(renew(deadline))
                try:
                    yield
                finally:
                    renewer.cancel()
        except TimeoutError:
            if lost.is_set():
                raise LeaseLost(scope) from None
            raise
