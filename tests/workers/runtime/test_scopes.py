"""Per-scope work-queue semantics: coalesced while queued, once more if marked while running, never lost."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from jobs.queue import JobQueue
from workers.runtime.scopes import LeaseLost, Scope, Scopes

QUEUE = "trellis:test:queue"
BOARD = Scope("board", "5f0b0a4d0b0a4d0b0a4d0b0a")


def scopes(redis: Redis, **kwargs: float) -> Scopes:
    return Scopes(redis, JobQueue(redis, QUEUE), **kwargs)


async def started(work: Scopes, scope: Scope = BOARD) -> str:
    token = await work.start(scope)
    assert token is not None
    return token


async def due_in_ms(redis: Redis) -> float:
    """How long until the one queued reconcile is due, by Redis's clock."""
    [(_, score)] = await redis.zrange(QUEUE, 0, -1, withscores=True)
    now_ms = (await redis.time())[0] * 1000
    return float(score) - now_ms


async def test_a_burst_of_marks_queues_one_reconcile(redis_client: Redis) -> None:
    work = scopes(redis_client)
    queued = await asyncio.gather(*(work.mark(BOARD, reason="event") for _ in range(200)))
    assert queued.count(True) == 1
    assert await redis_client.zcard(QUEUE) == 1


async def test_the_reconcile_is_deferred_by_the_debounce(redis_client: Redis) -> None:
    await scopes(redis_client, debounce=5.0).mark(BOARD, reason="event")
    assert await due_in_ms(redis_client) > 4000


async def test_a_mark_during_the_run_queues_exactly_one_more(redis_client: Redis) -> None:
    work = scopes(redis_client)
    await work.mark(BOARD, reason="event")
    token = await started(work)
    during = [await work.mark(BOARD, reason="event while running") for _ in range(5)]
    again = await work.finished(BOARD, token)
    assert during == [False] * 5
    assert again is True
    assert await redis_client.zcard(QUEUE) == 2
    # The second run starts and ends with no mark: the scope is idle again.
    assert await work.finished(BOARD, await started(work)) is False
    assert await work.mark(BOARD, reason="later event") is True


async def test_the_run_after_a_mark_during_the_run_waits_the_debounce_too(redis_client: Redis) -> None:
    work = scopes(redis_client, debounce=5.0)
    await work.mark(BOARD, reason="event")
    await redis_client.delete(QUEUE)  # the first run's job, taken by the worker
    token = await started(work)
    await work.mark(BOARD, reason="event while running")
    assert await work.finished(BOARD, token) is True
    assert await due_in_ms(redis_client) > 4000


async def test_a_run_that_will_be_retried_keeps_the_scope_queued_for_its_retry(redis_client: Redis) -> None:
    work = scopes(redis_client)
    await work.mark(BOARD, reason="event")
    token = await started(work)
    await work.mark(BOARD, reason="event while running")
    await work.retrying(BOARD, token)  # the run failed; arq runs the same job again later
    assert await work.mark(BOARD, reason="event before the retry") is False  # no second reconcile
    assert await redis_client.zcard(QUEUE) == 1


async def test_a_run_with_no_marks_leaves_the_scope_idle(redis_client: Redis) -> None:
    work = scopes(redis_client)
    await work.mark(BOARD, reason="event")
    assert await work.finished(BOARD, await started(work)) is False
    assert await redis_client.keys(f"trellis:scope:{BOARD}:*") == []


async def test_a_scope_whose_reconcile_was_lost_is_not_stuck(redis_client: Redis) -> None:
    work = scopes(redis_client, lifetime=0.2)
    await work.mark(BOARD, reason="event")
    await redis_client.delete(QUEUE)  # the job is lost: its enqueue failed, say
    await asyncio.sleep(0.3)
    assert await work.mark(BOARD, reason="next event") is True


async def test_scopes_do_not_share_state(redis_client: Redis) -> None:
    work = scopes(redis_client)
    assert await work.mark(BOARD, reason="e") is True
    assert await work.mark(Scope("workspace", "5f0c0c0c0c0c0c0c0c0c0c0c"), reason="e") is True


async def test_a_second_run_of_a_scope_does_not_start_while_the_first_holds_the_lease(
    redis_client: Redis,
) -> None:
    work = scopes(redis_client)
    first = await started(work)
    assert await work.start(BOARD) is None
    await work.finished(BOARD, first)
    assert await work.start(BOARD) is not None


async def test_a_jobs_next_try_takes_back_the_lease_its_failed_try_left_held(redis_client: Redis) -> None:
    work = scopes(redis_client)
    await work.start(BOARD, holder="reconcile:board:job-1")  # and it fails while Redis is away
    assert await work.start(BOARD, holder="reconcile:board:job-2") is None
    assert await work.start(BOARD, holder="reconcile:board:job-1") == "reconcile:board:job-1"


async def test_a_dead_workers_lease_lapses_and_the_scope_runs_again(redis_client: Redis) -> None:
    work = scopes(redis_client, lease=0.2)
    await work.mark(BOARD, reason="event")
    await started(work)  # and the worker dies: nobody renews, nobody finishes
    assert await work.mark(BOARD, reason="event while it runs") is False
    assert await work.pending([BOARD]) == [True]
    await asyncio.sleep(0.3)
    assert await work.pending([BOARD]) == [False]
    assert await work.mark(BOARD, reason="event after it died") is True
    assert await work.start(BOARD) is not None


async def test_a_run_whose_lease_lapsed_touches_nothing_when_it_ends(redis_client: Redis) -> None:
    work = scopes(redis_client, lease=0.2)
    stalled = await started(work)
    await asyncio.sleep(0.3)
    current = await started(work)
    await work.mark(BOARD, reason="event during the current run")
    assert await work.finished(BOARD, stalled) is False
    assert await work.renew(BOARD, current) is True
    assert await work.finished(BOARD, current) is True  # the mark is the current run's to honour


async def test_a_run_is_kept_while_it_renews_and_stopped_once_its_lease_is_gone(redis_client: Redis) -> None:
    work = scopes(redis_client, lease=0.3)
    token = await started(work)
    async with work.renewing(BOARD, token):
        await asyncio.sleep(0.7)  # over twice the lease: renewed meanwhile
        assert await work.start(BOARD) is None

    async def run_past_a_lost_lease() -> None:
        async with work.renewing(BOARD, token):
            await redis_client.delete(f"trellis:scope:{BOARD}:lease")  # as if it lapsed
            await asyncio.sleep(5)

    with pytest.raises(LeaseLost):
        await run_past_a_lost_lease()


async def test_holding_a_scope_waits_for_its_run_and_then_keeps_others_out(redis_client: Redis) -> None:
    work = scopes(redis_client, lease=0.3)
    running = await started(work)

    async def run_ends() -> None:
        await asyncio.sleep(0.3)
        await work.finished(BOARD, running)

    ending = asyncio.create_task(run_ends())
    async with work.holding(BOARD, patience=5):
        assert ending.done()  # it waited for the run to end
        assert await work.start(BOARD) is None  # and holds the scope now
    assert await work.start(BOARD) is not None  # let go of


async def test_holding_a_scope_gives_up_after_its_patience(redis_client: Redis) -> None:
    work = scopes(redis_client, lease=30)
    await started(work)

    async def hold() -> None:
        async with work.holding(BOARD, patience=0.3):
            pass

    with pytest.raises(TimeoutError):
        await hold()


async def test_a_run_that_died_is_queued_again_once_its_lease_lapses_without_a_new_mark(
    redis_client: Redis,
) -> None:
    work = scopes(redis_client, lease=0.2)
    await work.mark(BOARD, reason="event")
    await redis_client.delete(QUEUE)  # its job ran...
    await started(work)  # ...and died with its worker, holding the scope
    await work.mark(BOARD, reason="event during the dead run")  # only sets the scope dirty
    assert await work.repair_lapsed() == []  # the lease is live: it may still be running
    await asyncio.sleep(0.3)
    assert await work.repair_lapsed() == [BOARD]
    assert await redis_client.zcard(QUEUE) == 1
    assert await work.repair_lapsed() == []  # queued now: nothing more to repair
