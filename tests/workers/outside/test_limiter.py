"""The shared limiter: exact against the emulator's count, fair between priorities, paused together."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from emulator.limits import Limits
from tests.conftest import REDIS_URL
from tests.emulator.conftest import TOKEN
from tests.workers.conftest import NAMESPACE, ClientFactory
from workers.outside.limiter import Limit, Limiter, LimiterPolicy, Priority
from workers.outside.trello import TrelloClient, TrelloLimits


async def hammer(client: TrelloClient, board: str, callers: int, seconds: float) -> int:
    """`callers` tasks reading a board's members back to back for `seconds`; how many calls they made."""
    deadline = time.monotonic() + seconds
    done = 0

    async def caller() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            await client.board_memberships(board)
            done += 1

    await asyncio.gather(*(caller() for _ in range(callers)))
    return done


# The factory fixture opens a fresh emulator for every example, and each example empties Redis first.
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(callers=st.integers(2, 24), latency_ms=st.sampled_from([0, 3, 15]), maximum=st.integers(5, 20))
async def test_in_no_window_does_the_emulator_see_more_than_the_limit(
    open_trello: ClientFactory, redis_client: Redis, callers: int, latency_ms: int, maximum: int
) -> None:
    await redis_client.flushdb()
    window = 0.5
    async with open_trello(
        emulator_limits=Limits(
            token_max=maximum, token_window=window, key_max=10 * maximum, key_window=window
        ),
        client_limits=TrelloLimits(token_max=maximum, key_max=10 * maximum, window=window),
    ) as (client, app):
        app.state.faults.update({"latency_ms": latency_ms})
        served = await hammer(client, next(iter(app.state.world.boards)), callers, 1.6)
        rejected = app.state.limiter.counters.rejected.get(f"token:{TOKEN}", 0)
    assert rejected == 0
    assert served >= maximum * 3  # and it was kept busy: at least three windows' worth


async def test_waiting_callers_sleep_rather_than_poll(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE)
    limit = Limit("poll-test", 5, 0.5)

    async def take() -> None:
        async with limiter.permit([limit]):
            pass

    started = time.monotonic()
    await asyncio.gather(*(take() for _ in range(20)))
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 3.0  # 20 permits at 5 per 0.5 s
    # A permit costs one acquire (its completion rides with the next); each wait adds one, no busy loop.
    assert limiter.stats.round_trips <= 20 + 20 + 2


async def take(limiter: Limiter, limit: Limit, priority: Priority, count: int) -> list[float]:
    """`count` permits one after another; when each was granted, from the first ask."""
    started, granted = time.monotonic(), []
    for _ in range(count):
        async with limiter.permit([limit], priority):
            granted.append(time.monotonic() - started)
    return granted


async def test_bulk_alone_borrows_the_reserve_and_runs_at_the_limit(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(bulk_reserve=0.4, bulk_max_wait=60))
    limit = Limit("borrow-test", 10, 1.0)
    granted = await take(limiter, limit, Priority.BULK, 10)
    assert granted[-1] < 1.0  # all ten in the first window: the 40 % reserve was lent, no event asked


async def test_bulk_is_paced_at_the_limits_rate(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(bulk_max_wait=60))
    limit = Limit("pace-test", 10, 1.0)
    granted = await take(limiter, limit, Priority.BULK, 6)
    gaps = [later - earlier for earlier, later in itertools.pairwise(granted)]
    assert min(gaps) >= 0.09  # a permit every window / maximum, never a window's worth at once


async def test_once_an_event_had_to_wait_bulk_leaves_it_the_reserve(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(bulk_reserve=0.4, bulk_max_wait=60))
    limit = Limit("reserve-test", 10, 1.0)
    bulk_granted: list[float] = []

    async def bulk() -> None:
        while True:
            async with limiter.permit([limit], Priority.BULK):
                bulk_granted.append(time.monotonic())

    running = asyncio.create_task(bulk())
    await asyncio.sleep(2.2)  # bulk alone: the whole limit, the reserve lent
    asked = time.monotonic()
    async with limiter.permit([limit], Priority.EVENT):
        event_at = time.monotonic()
    await asyncio.sleep(1.2)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    before = sum(asked - 1.0 <= t < asked for t in bulk_granted)
    after = sum(event_at < t <= event_at + 1.0 for t in bulk_granted)
    assert before >= 8  # borrowed: more than the 60 % it keeps to, in the window before the event
    assert event_at - asked > 0.01  # the event found the window full and waited for a slot
    assert after <= 6 + 1  # then bulk kept to 60 % for a window (one permit may have been reserved)


async def test_an_event_asking_while_bulk_saturates_the_limit_waits_about_one_spacing(
    redis_client: Redis,
) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(bulk_reserve=0.2, bulk_max_wait=60))
    limit = Limit("give-back-test", 10, 1.0)
    bulk = asyncio.create_task(take(limiter, limit, Priority.BULK, 100))
    await asyncio.sleep(1.5)  # bulk alone: it borrowed the reserve, the window is full
    waits = [(await take(limiter, limit, Priority.EVENT, 1))[0] for _ in range(3)]
    bulk.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await bulk
    assert max(waits) < 0.5  # the next freed slot goes to the event: within a few spacings (0.1 s)


async def test_a_response_is_re_stamped_with_the_next_permit_in_one_round_trip(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(restamp_within=5.0))
    limit = Limit("restamp-test", 100, 10.0)
    await take(limiter, limit, Priority.EVENT, 20)
    assert limiter.stats.round_trips == 20  # each completion rode with the next permit
    first = f"{limiter._prefix}0"
    stamp_before = await redis_client.zscore(limiter.bucket(limit), first)
    await asyncio.sleep(0.05)
    await limiter.aclose()  # the last one's re-stamp is flushed: it was waiting
    assert limiter.stats.round_trips == 21
    assert await redis_client.zscore(limiter.bucket(limit), first) == stamp_before  # re-stamped once


async def test_a_re_stamp_with_no_permit_to_ride_is_flushed_soon(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(restamp_within=0.1))
    limit = Limit("flush-test", 100, 10.0)
    async with limiter.permit([limit]):
        granted_at = await redis_client.zscore(limiter.bucket(limit), f"{limiter._prefix}0")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    restamped_at = await redis_client.zscore(limiter.bucket(limit), f"{limiter._prefix}0")
    assert restamped_at is not None
    assert granted_at is not None
    assert restamped_at >= granted_at + 50  # counts from after the response, not from the grant


async def test_bulk_that_waited_too_long_competes_as_an_event(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(bulk_reserve=0.4, bulk_max_wait=0.3))
    limit = Limit("aging-test", 5, 10.0)
    await redis_client.set(limiter.events_key, 1, px=10_000)  # an event caller had to wait: no lending
    for _ in range(3):  # events fill what bulk may use (5 - 40 %)
        async with limiter.permit([limit], Priority.EVENT):
            pass
    started = time.monotonic()
    async with limiter.permit([limit], Priority.BULK):
        pass
    assert 0.3 <= time.monotonic() - started < 2.0  # through once it had waited bulk_max_wait


async def test_a_429_in_one_process_pauses_another(redis_client: Redis) -> None:
    script = (
        "import asyncio\n"
        "from redis.asyncio import Redis\n"
        "from workers.outside.limiter import Limiter, LimiterPolicy\n"
        f"r = Redis.from_url({REDIS_URL!r})\n"
        f"l = Limiter(r, {NAMESPACE!r}, LimiterPolicy(pause_base=2.0, pause_cap=2.0))\n"
        "print(asyncio.run(l.pause_for_429()))\n"
    )
    command = [sys.executable, "-c", script]
    finished = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=True)
    pause = float(finished.stdout)
    limiter = Limiter(redis_client, NAMESPACE)
    # The child took a while to exit: what counts is the part of its pause still ahead of us.
    remaining = await redis_client.pttl(limiter.pause_key) / 1000
    started = time.monotonic()
    async with limiter.permit([Limit("pause-test", 100, 10.0)]):
        pass
    waited = time.monotonic() - started
    assert 1.0 <= pause <= 2.0
    assert remaining > 0
    assert waited >= remaining - 0.05


async def test_pauses_grow_while_429s_keep_coming(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(pause_base=0.1, pause_cap=10))
    pauses = [await limiter.pause_for_429() for _ in range(5)]
    ceilings = [0.1 * 2**k for k in range(5)]
    assert all(c / 2 <= p <= c for p, c in zip(pauses, ceilings, strict=True))


async def test_limits_are_kept_in_keys_that_do_not_hold_the_secrets(
    open_trello: ClientFactory, redis_client: Redis
) -> None:
    async with open_trello() as (client, _):
        await client.me()
    keys = [k.decode() for k in await redis_client.keys("*")]
    assert keys
    assert not any(TOKEN in k or "k-test" in k for k in keys)


async def test_safety_margin_keeps_permits_unused(redis_client: Redis) -> None:
    limiter = Limiter(redis_client, NAMESPACE, LimiterPolicy(safety_margin=2))
    limit = Limit("margin-test", 5, 10.0)
    for _ in range(3):
        async with limiter.permit([limit]):
            pass
    waiting = asyncio.create_task(_take(limiter, limit))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # 3 of 5 taken, 2 kept back: the fourth waits
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)


async def _take(limiter: Limiter, limit: Limit) -> None:
    async with limiter.permit([limit]):
        pass


async def test_use_counts_every_processs_permits_in_the_window_that_ends_now(redis_client: Redis) -> None:
    limit = Limit("use-test", 10, 0.5)
    first, second = Limiter(redis_client, NAMESPACE), Limiter(redis_client, NAMESPACE)
    for limiter in (first, second, second):
        async with limiter.permit([limit]):
            pass

    now = await first.use()
    await asyncio.sleep(0.6)
    later = await first.use()

    assert [(u.name, u.used, u.maximum, u.window) for u in now] == [("use-test", 3, 10, 0.5)]
    assert [u.used for u in later] == [0]


async def test_use_of_a_limiter_that_was_never_asked_is_empty(redis_client: Redis) -> None:
    assert await Limiter(redis_client, NAMESPACE).use() == []
