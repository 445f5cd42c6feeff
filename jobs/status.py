"""The status board: what the workers last did that an operator looks for — the last resync, the last
webhook check, the rate limiter's use of its window — written by the workers, read by the receiver's
console. One Redis hash, a JSON object a field, each stamped with when it was written."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

STATUS_KEY = "trellis:status"

RESYNC = "resync"  # {"reason": ..., "scopes": n, "changes": n}
WEBHOOKS = "webhooks"  # {"ok": n, "created": n, "reactivated": n, "failed": n, "gone": n}
LIMITER = "limiter"  # {"limits": [{"name": ..., "used": n, "maximum": n, "window": seconds}]}


@dataclass(frozen=True)
class Status:
    at: float  # Unix time it was written
    figures: dict[str, Any]

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.at)


class StatusBoard:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, name: str, **figures: Any) -> None:
        entry = json.dumps({"at": time.time(), "figures": figures}, separators=(",", ":"))
        await self.redis.hset(STATUS_KEY, name, entry)  # type: ignore[misc]

    async def read(self) -> dict[str, Status]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(STATUS_KEY)  # type: ignore[misc]
        board = {}
        for name, entry in raw.items():
            data = json.loads(entry)
            board[name.decode()] = Status(at=float(data["at"]), figures=data["figures"])
        return board
