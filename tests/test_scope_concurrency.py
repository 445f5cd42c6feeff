"""One reconcile of a scope at a time, whatever the backlog: two arq workers drain a queue far longer than
the scopes' queued state lives (so duplicate jobs of one board are queued), with bursts of marks on
the same boards meanwhile and Trello answering slowly. The reconciles of each board running at once,
sampled on every start, never exceed one, and nothing is left marked."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from arq import Worker
from redis.asyncio import Redis

from jobs import builders
from jobs.deadletters import DeadLetters
from jobs.queue import JobQueue
from tests.conftest import SettingsFactory
from tests.stack import QUEUE, emulator_state, services, settings_for, store_like_trello
from trellis.wiring import worker_settings
from workers.runtime.functions import reconciles
from workers.runtime.scopes import Scope, Scopes

__all__ = ["services"]  # a fixture, used by name


class Sampler:
    """Counts the reconciles of each board under way; remembers the most at once."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.most = 0
        self.runs = 0

    def wrap(self, reconcile: Any) -> Any:
        async def counted(trello: Any, database: Any, board_id: str, **kwargs: Any) -> Any:
            self.now[board_id] += 1
            self.runs += 1
            self.most = max(self.most, self.now[board_id])
            try:
                return await reconcile(trello, database, board_id, **kwargs)
            finally:
                self.now[board_id] -= 1

        return counted


@pytest.fixture
def sampler(monkeypatch: pytest.MonkeyPatch) -> Sampler:
    sampler = Sampler()
    monkeypatch.setattr(reconciles, "reconcile_board_", sampler.wrap(reconciles.reconcile_board_))
    return sampler


async def test_two_workers_never_run_one_boards_reconcile_twice_at_once_through_a_long_backlog(
    services: dict[str, Any], make_settings: SettingsFactory, sqlite_url: str, redis_client: Redis,
    sampler: Sampler,
) -> None:  # fmt: skip
    # Job timeouts of 1 s: the queued state lives 3 s, far shorter than the backlog below.
    settings = settings_for(
        make_settings, services, job_timeout_seconds=1, scope_lease_seconds=1.5, worker_concurrency=8
    )
    state = await emulator_state(services)
    await store_like_trello(sqlite_url, state)
    boards = [b["id"] for b in state["boards"]][:3]
    queue = JobQueue(redis_client, QUEUE)
    async with httpx.AsyncClient(base_url=services["emulator"]) as trello:
        await trello.put("/_emulator/faults", json={"latency_ms": 40})
        # The backlog: every board queued 20 times over, as when the queued state expired under load.
        await queue.enqueue_many(
            [builders.reconcile("board", board, "backlog") for board in boards for _ in range(20)]
        )
        scopes = Scopes(redis_client, queue, debounce=0, lifetime=3)
        workers = [Worker(**{**worker_settings(settings), "burst": True, "poll_delay": 0.05}) for _ in "ab"]
        draining = []
        for worker in workers:  # one after the other: each migrates the SQLite store as it starts
            draining.append(asyncio.create_task(worker.main()))
            await asyncio.sleep(0.5)
        for _ in range(10):  # bursts of events on the same boards while the backlog drains
            await asyncio.gather(*(scopes.mark(Scope("board", b), reason="burst") for b in boards * 5))
            await asyncio.sleep(0.4)
        await asyncio.gather(*draining)
        for worker in workers:
            await worker.close()
        await trello.put("/_emulator/faults", json={"latency_ms": 0})

    print(f"{sampler.runs} reconciles of {len(boards)} boards, at most {sampler.most} of one board at once")
    assert sampler.runs >= len(boards)
    assert sampler.most == 1
    assert await DeadLetters(redis_client).list() == []
    assert await scopes.pending([Scope("board", b) for b in boards]) == [False] * len(boards)
    assert await redis_client.keys("trellis:scope:*") == []
