"""The scope lease as a state machine, checked by hypothesis against a model of workers that mark, start,
renew, finish, fail and crash, with time passing (leases lapsing, queued state expiring) in between.

The laws, after every step: no two live runs of a scope at once; a mark never lost (when no run is
live, a mark made since the last run started has a job queued); and once the backlog drains, nothing is
left in Redis for the scope.
"""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from jobs.queue import JobQueue
from workers.runtime.scopes import Scope, Scopes

BOARD = Scope("board", "5f0b0a4d0b0a4d0b0a4d0b0a")
KEYS = [f"trellis:scope:{BOARD}:{name}" for name in ("state", "dirty", "lease")]


class ScopeLeases(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.redis_url)
        self.run(self.redis.delete(*KEYS))
        self.scopes = Scopes(self.redis, JobQueue(self.redis, "trellis:test:lease-queue"), debounce=0)
        self.queued = 0  # the scope's jobs in arq's queue (each runs once, or is deferred or retried)
        self.live: list[str] = []  # tokens of the runs under way
        self.wanted = False  # a mark made since the last run started

    def run(self, coroutine: object) -> object:
        return self.loop.run_until_complete(coroutine)  # type: ignore[arg-type]

    @rule()
    def mark(self) -> None:
        self.wanted = True
        if self.run(self.scopes.mark(BOARD, reason="event")):
            self.queued += 1

    @precondition(lambda self: self.queued > 0)
    @rule()
    def start(self) -> None:
        self.queued -= 1
        token = self.run(self.scopes.start(BOARD))
        if token is None:
            self.queued += 1  # another run holds the scope: the job is deferred
            return
        assert isinstance(token, str)
        self.live.append(token)
        self.wanted = False

    @precondition(lambda self: self.live)
    @rule()
    def renew(self) -> None:
        assert self.run(self.scopes.renew(BOARD, self.live[0]))

    @precondition(lambda self: self.live)
    @rule()
    def finish(self) -> None:
        if self.run(self.scopes.finished(BOARD, self.live.pop())):
            self.queued += 1

    @precondition(lambda self: self.live)
    @rule()
    def fail(self) -> None:
        self.run(self.scopes.retrying(BOARD, self.live.pop()))
        self.queued += 1  # arq tries the job again

    @precondition(lambda self: self.live)
    @rule()
    def crash(self) -> None:
        self.live.pop()  # its lease stays until it lapses
        self.queued += 1  # arq runs the job of a dead worker again

    @rule()
    def lease_lapses(self) -> None:
        """Time passes beyond the lease: a dead worker's lease is gone, and a live run that could not
        renew meanwhile is stopped (`LeaseLost`) and retried."""
        self.run(self.redis.delete(KEYS[2]))
        self.queued += len(self.live)
        self.live.clear()

    @rule()
    def queued_state_expires(self) -> None:
        """A backlog outlives the queued state's lifetime."""
        if self.run(self.redis.get(KEYS[0])) == b"queued":
            self.run(self.redis.delete(KEYS[0]))

    @invariant()
    def one_live_run_at_most(self) -> None:
        assert len(self.live) <= 1

    @invariant()
    def no_mark_is_lost(self) -> None:
        if self.wanted and not self.live:
            assert self.queued > 0

    def teardown(self) -> None:
        try:
            for _ in range(1000):  # drain: every job runs, finishing at once
                if self.live:
                    self.finish()
                elif self.queued:
                    self.start()
                    if not self.live:  # held by a dead run's lease: wait for it to lapse
                        self.lease_lapses()
                else:
                    break
            assert (self.queued, self.live) == (0, [])
            assert self.run(self.redis.exists(*KEYS)) == 0
        finally:
            self.run(self.redis.delete("trellis:test:lease-queue"))
            self.run(self.redis.aclose())
            self.loop.close()


def test_the_scope_lease_keeps_its_laws_under_any_interleaving(redis_url: str) -> None:
    ScopeLeases.redis_url = redis_url
    run_state_machine_as_test(ScopeLeases, settings=settings(max_examples=150, stateful_step_count=40))
