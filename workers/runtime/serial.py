"""One holder at a time of a name, across every worker: a Redis lock that lapses if its holder dies.

For what Trello gives no way to do concurrently and safely (inviting newcomers to one workspace, whose
invitees only a before-and-after comparison can tell apart).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import LockError


@contextlib.asynccontextmanager
async def serialised(redis: Redis, name: str, *, hold: float) -> AsyncIterator[None]:
    """Hold `name` for the body: wait up to `hold` seconds for it, keep it at most `hold` seconds (a dead
    holder's lapses). Not getting it in time is a `TimeoutError`: a failure that may pass, so retried."""
    lock = redis.lock(f"trellis:serial:{name}", timeout=hold, blocking_timeout=hold)
    if not await lock.acquire():
        raise TimeoutError(f"waited {hold:.0f} s for {name}")
    try:
        yield
    finally:
        with contextlib.suppress(LockError):  # it lapsed meanwhile: someone else's now
            await lock.release()
