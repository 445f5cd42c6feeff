"""The dead-letter list: jobs that failed for good, kept in Redis for an operator to read and replay."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from jobs.queue import Job, JobQueue

DEAD_LETTERS_KEY = "trellis:dead-letters"


@dataclass(frozen=True)
class DeadLetter:
    job_id: str
    function: str
    args: list[Any]
    kwargs: dict[str, Any]
    tries: int
    error: str
    failed_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        return cls(**json.loads(raw))


class DeadLetters:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def add(self, letter: DeadLetter) -> None:
        await self.redis.hset(DEAD_LETTERS_KEY, letter.job_id, letter.to_json())  # type: ignore[misc]

    async def list(self) -> list[DeadLetter]:
        raw = await self.redis.hvals(DEAD_LETTERS_KEY)  # type: ignore[misc]
        return sorted((DeadLetter.from_json(r) for r in raw), key=lambda letter: letter.failed_at)

    async def get(self, job_id: str) -> DeadLetter | None:
        raw = await self.redis.hget(DEAD_LETTERS_KEY, job_id)  # type: ignore[misc]
        return None if raw is None else DeadLetter.from_json(raw)

    async def count(self) -> int:
        return int(await self.redis.hlen(DEAD_LETTERS_KEY))  # type: ignore[misc]

    async def drop(self, job_id: str) -> bool:
        return bool(await self.redis.hdel(DEAD_LETTERS_KEY, job_id))  # type: ignore[misc]

    async def replay(self, job_id: str, queue: JobQueue) -> bool:
        """Queue the job again under a new id (its old id still holds arq's failed result)."""
        letter = await self.get(job_id)
        if letter is None:
            return False
        await queue.enqueue(Job(letter.function, tuple(letter.args), letter.kwargs))
        await self.drop(job_id)
        return True
