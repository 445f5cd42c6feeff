"""Workers killed with SIGKILL in the middle of reconciles, again and again: every scope ends correct,
nothing is left in progress, nothing is dead-lettered."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis.asyncio import Redis

from jobs.deadletters import DEAD_LETTERS_KEY
from tests.faults.conftest import LONG, Stack

KILLS = 12 if LONG else 4
CRON_JOBS = (b"arq:in-progress:sweep_outbox:", b"arq:in-progress:full_resync:")


def is_cron(key: bytes) -> bool:
    return key.startswith(CRON_JOBS)


CHANGES = 120 if LONG else 40


@pytest.mark.timeout(300)
async def test_workers_killed_again_and_again_leave_every_scope_correct(stack: Stack) -> None:
    # Short job limits: arq runs a job lost with its worker again after the longest limit + 10 s.
    stack.env["TRELLIS_JOB_TIMEOUT_SECONDS"] = "2"
    stack.up(workers=2)
    state = await stack.linked_and_watched()
    kills = 0

    async def killer() -> None:
        nonlocal kills
        while kills < KILLS:
            await asyncio.sleep(random.uniform(0.3, 1.0))
            stack.kill_worker(random.choice(stack.workers))
            stack.start_worker()
            kills += 1

    killing = asyncio.create_task(killer())
    for i in range(CHANGES):
        await stack.change_by_hand(state, i)
        await asyncio.sleep(0.1)
    await killing
    assert kills == KILLS

    assert await stack.converged(within=120) == []
    redis = Redis.from_url(stack.redis.url)
    try:
        for _ in range(120):  # the last jobs, and lost ones run again, finish
            # A cron run (the outbox sweep every worker starts with) keeps its key 60 s by arq's design,
            # so that the same tick does not run twice: bookkeeping, not a job left running.
            in_progress = [k async for k in redis.scan_iter("arq:in-progress:*") if not is_cron(k)]
            scopes = [k async for k in redis.scan_iter("trellis:scope:*")]
            if not in_progress and not scopes and not await redis.zcard("trellis:test:queue"):
                break
            await asyncio.sleep(0.5)
        assert in_progress == []
        assert scopes == []  # no scope stuck as queued or running
        assert await redis.hlen(DEAD_LETTERS_KEY) == 0  # type: ignore[misc]
    finally:
        await redis.aclose()
